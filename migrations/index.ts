import { InitialSchemaPostgres1764028800000 } from './postgres/1764028800000-InitialSchema.js';
import { InitialSchemaSqlite1764028800000 } from './sqlite/1764028800000-InitialSchema.js';
import { MediaObjectsPostgres1764547200000 } from './postgres/1764547200000-MediaObjects.js';
import { MediaObjectsSqlite1764547200000 } from './sqlite/1764547200000-MediaObjects.js';
import { AuditSequencerPostgres1764633600000 } from './postgres/1764633600000-AuditSequencer.js';
import { AuditSequencerSqlite1764633600000 } from './sqlite/1764633600000-AuditSequencer.js';
import { SubjectKeyUsePostgres1764640000000 } from './postgres/1764640000000-SubjectKeyUse.js';
import { SubjectKeyUseSqlite1764640000000 } from './sqlite/1764640000000-SubjectKeyUse.js';
import { WhatsAppDeliveryPostgres1764720000000 } from './postgres/1764720000000-WhatsAppDelivery.js';
import { WhatsAppDeliverySqlite1764720000000 } from './sqlite/1764720000000-WhatsAppDelivery.js';
import { OutboxTemplateFallbackPostgres1764806400000 } from './postgres/1764806400000-OutboxTemplateFallback.js';
import { OutboxTemplateFallbackSqlite1764806400000 } from './sqlite/1764806400000-OutboxTemplateFallback.js';
import { OutboxConsentPurposePostgres1764892800000 } from './postgres/1764892800000-OutboxConsentPurpose.js';
import { OutboxConsentPurposeSqlite1764892800000 } from './sqlite/1764892800000-OutboxConsentPurpose.js';
import { OutboxContentConsentsPostgres1765238400000 } from './postgres/1765238400000-OutboxContentConsents.js';
import { OutboxContentConsentsSqlite1765238400000 } from './sqlite/1765238400000-OutboxContentConsents.js';
import { ConsentCapturedAtPostgres1764979200000 } from './postgres/1764979200000-ConsentCapturedAt.js';
import { ConsentCapturedAtSqlite1764979200000 } from './sqlite/1764979200000-ConsentCapturedAt.js';
import { OutboxRetriedCopyPostgres1765065600000 } from './postgres/1765065600000-OutboxRetriedCopy.js';
import { OutboxRetriedCopySqlite1765065600000 } from './sqlite/1765065600000-OutboxRetriedCopy.js';
import { WhatsAppUserIdsPostgres1765152000000 } from './postgres/1765152000000-WhatsAppUserIds.js';
import { WhatsAppUserIdsSqlite1765152000000 } from './sqlite/1765152000000-WhatsAppUserIds.js';

/**
 * Migrations are listed as classes, not globs, so the same list loads under tsc output, jest and
 * the CLI. One set per dialect: each uses its database's own trigger language.
 */
export const SQLITE_MIGRATIONS = [InitialSchemaSqlite1764028800000, MediaObjectsSqlite1764547200000, AuditSequencerSqlite1764633600000, SubjectKeyUseSqlite1764640000000, WhatsAppDeliverySqlite1764720000000, OutboxTemplateFallbackSqlite1764806400000, OutboxConsentPurposeSqlite1764892800000, ConsentCapturedAtSqlite1764979200000, OutboxRetriedCopySqlite1765065600000, WhatsAppUserIdsSqlite1765152000000, OutboxContentConsentsSqlite1765238400000];
export const POSTGRES_MIGRATIONS = [InitialSchemaPostgres1764028800000, MediaObjectsPostgres1764547200000, AuditSequencerPostgres1764633600000, SubjectKeyUsePostgres1764640000000, WhatsAppDeliveryPostgres1764720000000, OutboxTemplateFallbackPostgres1764806400000, OutboxConsentPurposePostgres1764892800000, ConsentCapturedAtPostgres1764979200000, OutboxRetriedCopyPostgres1765065600000, WhatsAppUserIdsPostgres1765152000000, OutboxContentConsentsPostgres1765238400000];
