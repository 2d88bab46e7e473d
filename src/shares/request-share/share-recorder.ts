import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { AuditLogService } from '../../audit/audit-log.service.js';
import { AuditSequencer } from '../../audit/audit-sequencer.js';
import { auditablePurpose } from '../../audit/domain/auditable-purpose.js';
import { canonicalJson } from '../../audit/domain/canonical-json.js';
import { timeOrderedId } from '../../audit/domain/random-pool.js';
import { type Subject, SubjectKeyRing, SubjectKeyService, type SubjectKeysRead } from '../../audit/subject-keys.service.js';
import { contentConsentsOf } from '../../delivery/content-consents.js';
import { MediaObjectEntity } from '../../delivery/infrastructure/delivery.entities.js';
import { mediaMessage, templateMessage, textMessage, type WhatsAppMessageRequest } from '../../delivery/whatsapp-message.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../../platform/config/config.js';
import { GroupCommit, type GroupResults } from '../../platform/database/group-commit.js';
import { ReadBatcher } from '../../platform/database/read-batcher.js';
import { Sql } from '../../platform/database/sql.js';
import { TransactionRunner } from '../../platform/database/transaction-runner.js';
import type { Outbound, ShareDecision } from '../../policy/domain/evaluator.js';
import type { PreparedMedia } from '../../policy/media-preparation.js';
import { WORKPLACE_POST_FIELD_NAMES } from '../../workplace/workplace-post-fields.js';
import type { ShareDocument } from '../share-document.js';
import type { RequestShareCommand } from './request-share.command.js';

/**
 * A request body's digests. Shares are stored with the keyed one (HMAC-SHA256 under a key derived
 * from the master key): the body names people, and a plain digest left after an erasure would let
 * whoever holds the exact body confirm it was shared. Shares stored before that hold the plain
 * SHA-256, which a replay of them still matches.
 */
export interface RequestDigest {
  keyed: string;
  unkeyed: string;
}

/** A decided share, to be recorded. */
export interface DecidedShare {
  command: RequestShareCommand;
  /** Digests of the request body's canonical JSON: tell a replay from a conflicting reuse of the key. */
  requestHash: RequestDigest;
  decision: ShareDecision;
  /** The purposes the bundle that decided names (PolicyBundle.purposes): the entry holds the share's in clear only if it is one. */
  listedPurposes: ReadonlySet<string>;
  media: PreparedMedia['minimised'];
  /** When the decision began reading consents (ISO 8601): a subject key made after it was made after the decision read. */
  consentsAsOf: string;
  /**
   * The destroyed subject keys found when this share was last tried, by lookup: when each was
   * destroyed. A decision made after that try may be recorded over them (new keys are made).
   */
  destroyedKeysSeen?: ReadonlyMap<string, string>;
}

export type RecordedShare =
  /** Written now. `index` is the entry's log index when it was sequenced in the same commit. */
  | { outcome: 'recorded'; document: ShareDocument; index: number | undefined }
  /** The Idempotency-Key was taken by an earlier share with the same body: that share's document. */
  | { outcome: 'replayed'; document: ShareDocument }
  /** The Idempotency-Key was taken by an earlier share with another body. */
  | { outcome: 'conflict' }
  /**
   * Nothing written: someone the share names was erased, or their key destroyed, since it was
   * decided (or since `destroyedKeysSeen`). The decision may rest on what the erasure removed,
   * such as their consent, and recording it would put back what the erasure cleared: it must be
   * decided again, with `destroyedKeysSeen` set to `destroyed`.
   */
  | { outcome: 'subject-erased'; destroyed: ReadonlyMap<string, string> };

interface Draft {
  decided: DecidedShare;
  id: string;
  entry: string;
  author: Subject;
  document: ShareDocument;
}

type Earlier = Extract<RecordedShare, { outcome: 'replayed' | 'conflict' }>;

interface IdempotencyKey {
  apiKeyId: string;
  idempotencyKey: string;
}

/** A share that holds an Idempotency-Key, with its entry's log index if it has one yet. */
interface Holder {
  requestHash: string;
  document: ShareDocument;
}

const SHARE_COLUMNS = ['id', 'api_key_id', 'idempotency_key', 'request_hash', 'status', 'policy_name', 'bundle_hash', 'document', 'audit_entry', 'created_at'];
const RECIPIENT_COLUMNS = ['share_id', 'wa_id', 'decision', 'reasons', 'delivery_state', 'delivery_updated_at'];
const OUTBOX_COLUMNS = ['id', 'share_id', 'wa_id', 'purpose', 'consent_purpose', 'payload', 'fallback_payload', 'decision_entry', 'state', 'attempts', 'claimed_by', 'claim_expires_at', 'created_at', 'updated_at', 'content_consents'];

/**
 * Records decided shares: each decision, its audit entry and an outbox row per allowed recipient
 * are written in one transaction, so nothing can be sent that the log does not hold. Decisions
 * that arrive together share that transaction (group commit), which also sequences their
 * entries into the log when this replica may: one commit makes them durable and indexed.
 */
@Injectable()
export class ShareRecorder {
  private readonly commits: GroupCommit<DecidedShare, RecordedShare>;
  private readonly holders: ReadBatcher<IdempotencyKey, Holder | undefined>;

  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(AuditSequencer) private readonly sequencer: AuditSequencer,
    @Inject(SubjectKeyService) private readonly subjectKeys: SubjectKeyService,
    @Inject(SLUICE_CONFIG) config: SluiceConfig,
  ) {
    // With more than one in flight (PostgreSQL), a batch begins while the one before commits and
    // waits for the sequencer lock only at its end (see AuditSequencer.appendSequenced).
    this.commits = new GroupCommit(transactions, (manager, shares) => this.recordAll(manager, shares), { inFlight: config.shareCommitsInFlight });
    this.holders = new ReadBatcher(transactions, (manager, keys) => this.holdersOf(manager, keys));
  }

  /** Resolves once the transaction holding the share has committed. */
  record(share: DecidedShare): Promise<RecordedShare> {
    return this.commits.submit(share);
  }

  /** The committed share that already holds this request's Idempotency-Key, if any (concurrent requests share one query). */
  async earlier(command: RequestShareCommand, requestHash: RequestDigest): Promise<Earlier | undefined> {
    const holder = await this.holders.get(command);
    // It may be a commit whose sync is still under way (WalSync): answered with only once durable.
    if (holder) await this.transactions.untilDurable();
    return answerFor(holder, requestHash);
  }

  private async holdersOf(manager: EntityManager, keys: readonly IdempotencyKey[]): Promise<(Holder | undefined)[]> {
    const sql = Sql.of(manager);
    const found = new Map<string, { request_hash: string; document: string; audit_entry: string }>();
    for (const apiKeyId of new Set(keys.map((k) => k.apiKeyId))) {
      const wanted = [...new Set(keys.filter((k) => k.apiKeyId === apiKeyId).map((k) => k.idempotencyKey))];
      const rows = await sql.rows<{ idempotency_key: string; request_hash: string; document: string; audit_entry: string }>(
        manager,
        `SELECT idempotency_key, request_hash, document, audit_entry FROM shares WHERE api_key_id = ${sql.params(1)} AND idempotency_key IN (${sql.params(wanted.length, 2)})`,
        [apiKeyId, ...wanted],
      );
      for (const row of rows) found.set(keyOf({ apiKeyId, idempotencyKey: row.idempotency_key }), row);
    }
    const indices = await this.auditLog.indicesOf(
      [...found.values()].map((row) => row.audit_entry),
      manager,
    );
    return keys.map((key) => {
      const row = found.get(keyOf(key));
      if (!row) return undefined;
      const document = JSON.parse(row.document) as ShareDocument;
      return { requestHash: row.request_hash, document: { ...document, audit: { entry: row.audit_entry, index: indices.get(row.audit_entry) ?? null } } };
    });
  }

  private async recordAll(manager: EntityManager, shares: DecidedShare[]): Promise<GroupResults<RecordedShare>> {
    const sql = Sql.of(manager);
    const now = new Date().toISOString();
    const drafts = shares.map((decided) => this.draft(decided, now));
    // The share row claims the Idempotency-Key (ON CONFLICT DO NOTHING): a key already taken, by a
    // committed share or by another transaction (PostgreSQL waits for it to end), makes a replay.
    // In key order, so that two transactions wait for each other's keys in one order only.
    const byKey = [...drafts].sort((a, b) => compare(keyOf(a.decided.command), keyOf(b.decided.command)));
    const rows = byKey.map((d) => shareRow(d, now));
    const subjects = drafts.flatMap(subjectsOf);
    // The subject keys of every draft are read in the same round trip (only read: keys are
    // created or touched below, for the people of the shares actually recorded), once no erasure
    // of those people is under way.
    const [, claimed, keysRead] = await sql.pipelined(
      () => this.subjectKeys.holdAgainstErasure(manager, subjects),
      () => sql.insert(manager, 'shares', SHARE_COLUMNS, rows, { on: ['api_key_id', 'idempotency_key'], returning: ['id'] }),
      () => this.subjectKeys.read(manager, subjects),
    );
    const written = new Set(claimed.map((row) => String(row.id)));
    // Written shares whose row is withdrawn: someone they name lost their key since the decision.
    const erasedSince = new Map<string, ReadonlyMap<string, string>>();
    for (const draft of drafts) {
      if (!written.has(draft.id)) continue;
      const destroyed = this.subjectKeys.destroyedAmong(keysRead, subjectsOf(draft));
      const seen = draft.decided.destroyedKeysSeen;
      // A key made since the decision read consents may be an erased person's new one (another
      // share named them after the erasure): the decision may rest on the consent erased with it.
      const renewed = this.subjectKeys.createdSince(keysRead, subjectsOf(draft), draft.decided.consentsAsOf);
      if (renewed || [...destroyed].some(([lookup, at]) => seen?.get(lookup) !== at)) erasedSince.set(draft.id, destroyed);
    }
    if (erasedSince.size > 0) await sql.execute(manager, `DELETE FROM shares WHERE id IN (${sql.params(erasedSince.size)})`, [...erasedSince.keys()]);
    const recorded = drafts.filter((d) => written.has(d.id) && !erasedSince.has(d.id));
    const indices = recorded.length > 0 ? await this.writeDecisions(manager, sql, recorded, keysRead, now) : new Map<string, number>();
    const results: RecordedShare[] = [];
    const withdrawnKeys = new Set(drafts.filter((d) => erasedSince.has(d.id)).map((d) => keyOf(d.decided.command)));
    for (const draft of drafts) {
      const destroyed = erasedSince.get(draft.id);
      if (written.has(draft.id) && !destroyed) {
        results.push({ outcome: 'recorded', document: draft.document, index: indices.get(draft.entry) });
      } else if (written.has(draft.id) || withdrawnKeys.has(keyOf(draft.decided.command))) {
        // Its own row was withdrawn, or that of the share of this transaction that took its key.
        results.push({ outcome: 'subject-erased', destroyed: destroyed ?? draft.decided.destroyedKeysSeen ?? new Map() });
      } else {
        // The key's holder committed before this statement, or is an earlier share of this same transaction.
        const [holder] = await this.holdersOf(manager, [draft.decided.command]);
        const earlier = answerFor(holder, draft.decided.requestHash);
        if (!earlier) throw new Error('an Idempotency-Key was taken by a share that cannot be read');
        results.push(earlier);
      }
    }
    return { results, committed: () => this.sequencer.committed(indices) };
  }

  private draft(decided: DecidedShare, now: string): Draft {
    const { command, decision } = decided;
    const id = timeOrderedId('shr_');
    const entry = this.auditLog.newEntryId();
    const author: Subject = { type: 'workplace', id: String((command.body.post as { from?: { id?: unknown } }).from?.id ?? '') };
    const document: ShareDocument = {
      id,
      status: decision.status,
      policy: decision.policy ?? { name: null, bundle: decision.bundle },
      reasons: decision.reasons,
      recipients: decision.recipients.map((r) => ({ waId: r.waId, decision: r.decision, reasons: r.reasons })),
      crossing: decision.crossing,
      audit: { entry, index: null },
      createdAt: now,
    };
    return { decided, id, entry, author, document };
  }

  /** Writes the decisions and their entries; returns the entries' log indices if sequenced in this transaction. */
  private async writeDecisions(manager: EntityManager, sql: Sql, drafts: Draft[], keysRead: SubjectKeysRead, now: string): Promise<Map<string, number>> {
    // Keys are created or touched for the people of recorded shares only.
    const keys = await this.subjectKeys.keysFor(manager, drafts.flatMap(subjectsOf), keysRead);
    const entries = drafts.map((draft) => ({ id: draft.entry, kind: 'share.decided' as const, body: this.entryBody(draft, keys) }));
    const recipients = drafts.flatMap(({ id, decided }) =>
      decided.decision.recipients.map((r) => [id, r.waId, r.decision, JSON.stringify(r.reasons), r.decision === 'allowed' ? 'queued' : null, r.decision === 'allowed' ? now : null]),
    );
    const messages: unknown[][] = [];
    for (const { id, entry, decided } of drafts) {
      const { decision, media, command } = decided;
      const outbound = decision.outbound;
      const allowed = decision.recipients.filter((r) => r.decision === 'allowed');
      if (!outbound || allowed.length === 0) continue;
      const mediaId = outbound.type === 'image' || outbound.type === 'video' ? await this.storeMedia(manager, id, outbound, media, now) : undefined;
      const contentConsents = contentConsentsOf(decision);
      for (const r of allowed) {
        const fallback = decision.outsideWindow ? JSON.stringify(whatsAppRequest(r.waId, decision.outsideWindow, undefined)) : null;
        const payload = JSON.stringify(whatsAppRequest(r.waId, outbound, mediaId));
        messages.push([timeOrderedId('out_'), id, r.waId, command.request.purpose, decision.recipientConsent, payload, fallback, entry, 'pending', 0, null, null, now, now, contentConsents]);
      }
    }
    // Sent before the sequencer's first statements, in the same round trip; written before the
    // sequencer's savepoint, so they stay if sequencing falls back to queuing the entries.
    const [, indices] = await sql.pipelined(
      () =>
        sql.insertAll(manager, [
          { table: 'share_recipients', columns: RECIPIENT_COLUMNS, rows: recipients },
          { table: 'outbox_messages', columns: OUTBOX_COLUMNS, rows: messages },
        ]),
      () => this.sequencer.appendSequenced(manager, entries),
    );
    return indices;
  }

  private entryBody({ decided, id, author }: Draft, keys: SubjectKeyRing): Record<string, unknown> {
    const { command, decision } = decided;
    // The names the policy's allow-list holds: those of what crossed, and of what it lists but
    // dropped (for want of consent, say); only a field it does not list is `not_allow_listed`.
    const listed = [...decision.crossing.fields, ...decision.crossing.dropped.filter((d) => d.reason !== 'not_allow_listed')];
    const policyNames = new Set(listed.flatMap((f) => f.path.split('.')));
    const sharer: Subject = { type: 'workplace', id: command.request.sharedBy.workplaceUserId };
    // A purpose no policy names is the sharer's to read back (sealed), nobody else's.
    const purpose = auditablePurpose(
      command.request.purpose,
      decided.listedPurposes,
      (value) => keys.digest(sharer, value),
      (value) => keys.seal(sharer, value, `share ${id} purpose`),
    );
    return {
      share: id,
      ...purpose,
      policy: decision.policy ?? { name: null, bundle: decision.bundle },
      lawfulBasis: decision.lawfulBasis ?? null,
      status: decision.status,
      reasons: decision.reasons,
      requestedBy: command.apiKeyId,
      sharedBy: keys.pseudonym(sharer),
      post: keys.digest(author, String((command.body.post as { id?: unknown }).id)),
      recipients: decision.recipients.map((r) => ({ subject: keys.pseudonym({ type: 'whatsapp', id: r.waId }), decision: r.decision, reasons: r.reasons })),
      subjects: decision.subjects
        .filter((s) => s.role !== 'recipient')
        .map((s) => ({ role: s.role, subject: keys.pseudonym({ type: s.type, id: s.id }), subjectType: s.type, consent: s.consent, categories: s.categories })),
      crossing: {
        fields: decision.crossing.fields.map((f) => ({
          path: auditablePath(f.path, policyNames),
          category: f.category,
          transform: f.transform,
          ...(f.subject === 'author' ? { subject: keys.pseudonym(author) } : {}),
        })),
        dropped: decision.crossing.dropped.map((d) => ({ path: auditablePath(d.path, policyNames), reason: d.reason })),
        redactions: decision.crossing.redactions,
      },
      content: decision.outbound ? contentRecord(keys, author, decision.outbound, id) : null,
      ...(decision.outsideWindow ? { outsideWindow: { template: decision.outsideWindow.name, digest: keys.digest(author, canonicalJson(decision.outsideWindow.parameters)) } } : {}),
    };
  }

  private async storeMedia(manager: EntityManager, shareId: string, outbound: Extract<Outbound, { media: unknown }>, media: PreparedMedia['minimised'], now: string): Promise<string> {
    const minimised = media.get(outbound.media.path);
    if (!minimised || minimised.sha256 !== outbound.media.sha256) throw new Error('the decided media is missing');
    const id = `med_${createHash('sha256').update(shareId).update(minimised.sha256).digest('hex').slice(0, 32)}`;
    await manager.insert(MediaObjectEntity, { id, shareId, sha256: minimised.sha256, mimeType: minimised.mimeType, size: minimised.bytes.length, bytes: minimised.bytes, createdAt: now });
    return id;
  }
}

/** Everyone the share's audit entry names, each keyed by their own subject key. */
function subjectsOf({ decided, author }: Draft): Subject[] {
  const { command, decision } = decided;
  return [
    { type: 'workplace', id: command.request.sharedBy.workplaceUserId },
    author,
    ...decision.recipients.map((r) => ({ type: 'whatsapp', id: r.waId })),
    ...decision.subjects.filter((s) => s.role !== 'recipient').map((s) => ({ type: s.type, id: s.id })),
  ];
}

/**
 * What crossed: digests keyed by the author's key (provable), and the text itself sealed under
 * it, so the author's subject access report can show it; both unlinkable after erasure.
 */
function contentRecord(keys: SubjectKeyRing, author: Subject, outbound: Outbound, shareId: string): Record<string, unknown> {
  const digest = (value: string) => keys.digest(author, value);
  const text = outbound.type === 'text' ? outbound.body : outbound.type === 'template' ? outbound.parameters.join('\n') : outbound.caption;
  const sealed = keys.seal(author, text, `share ${shareId}`);
  switch (outbound.type) {
    case 'text':
      return { type: 'text', digest: digest(outbound.body), length: outbound.body.length, sealed };
    case 'template':
      return { type: 'template', template: outbound.name, digest: digest(canonicalJson(outbound.parameters)), parameters: outbound.parameters.length, sealed };
    default:
      return {
        type: outbound.type,
        digest: digest(outbound.caption),
        length: outbound.caption.length,
        sealed,
        media: { digest: digest(outbound.media.sha256), mimeType: outbound.media.mimeType },
      };
  }
}

function shareRow({ decided, id, entry, document }: Draft, now: string): unknown[] {
  const { command, decision, requestHash } = decided;
  return [id, command.apiKeyId, command.idempotencyKey, requestHash.keyed, decision.status, decision.policy?.name ?? null, document.policy.bundle, JSON.stringify(document), entry, now];
}

function answerFor(holder: Holder | undefined, requestHash: RequestDigest): Earlier | undefined {
  if (!holder) return undefined;
  const same = holder.requestHash === requestHash.keyed || holder.requestHash === requestHash.unkeyed;
  return same ? { outcome: 'replayed', document: holder.document } : { outcome: 'conflict' };
}

function keyOf(key: IdempotencyKey): string {
  return `${key.apiKeyId}\n${key.idempotencyKey}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function whatsAppRequest(to: string, outbound: Outbound, mediaId: string | undefined): WhatsAppMessageRequest {
  switch (outbound.type) {
    case 'text':
      return textMessage(to, outbound.body);
    case 'template':
      return templateMessage(to, outbound.name, outbound.language, outbound.parameters);
    default:
      return mediaMessage(to, outbound.type, mediaId!, outbound.caption);
  }
}

/**
 * A field's path as the audit log may hold it. Field names come from the caller and could carry
 * anything (`NL91ABNA0417164300` as a key): a name is kept only if a Workplace post has it or the
 * policy names it (`named`), and an array index only as digits.
 */
function auditablePath(path: string, named: ReadonlySet<string>): string {
  return path
    .split('.')
    .map((part) => (WORKPLACE_POST_FIELD_NAMES.has(part) || named.has(part) || /^\d{1,6}$/.test(part) ? part : '(unnamed)'))
    .join('.');
}
