import { Inject, Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { DataSource, type EntityManager, In } from 'typeorm';
import { AuditLogService, type QueuedEntry } from '../audit/audit-log.service.js';
import { canonicalJson } from '../audit/domain/canonical-json.js';
import { SubjectKeyService } from '../audit/subject-keys.service.js';
import { ConsentEventEntity, ConsentStateEntity } from './infrastructure/consent.entities.js';
import type { SubjectRef } from './subject.js';

export type ConsentStatus = 'granted' | 'withdrawn';
export type ConsentLookup = 'granted' | 'withdrawn' | 'none';

export interface ConsentChange {
  subject: SubjectRef;
  purpose: string;
  status: ConsentStatus;
  evidence: { method: string; text?: string; capturedAt?: string };
}

/**
 * The consent ledger: every change is an append-only event, audited in the same transaction, and
 * folded into the current-state projection that decisions read.
 */
@Injectable()
export class ConsentLedger {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(SubjectKeyService) private readonly subjectKeys: SubjectKeyService,
  ) {}

  async record(manager: EntityManager, change: ConsentChange): Promise<{ eventId: string; audit: QueuedEntry }> {
    const eventId = `cns_${randomBytes(12).toString('base64url')}`;
    const now = new Date().toISOString();
    const [audit] = await this.auditLog.append(manager, [
      {
        kind: change.status === 'granted' ? 'consent.granted' : 'consent.withdrawn',
        body: {
          consent: eventId,
          subject: await this.subjectKeys.pseudonym(manager, change.subject),
          subjectType: change.subject.type,
          purpose: change.purpose,
          // The evidence may quote the person; the log keeps its method and a keyed digest only.
          evidence: {
            method: change.evidence.method,
            digest: await this.subjectKeys.digest(manager, change.subject, canonicalJson(change.evidence)),
          },
        },
      },
    ]);
    await manager.insert(ConsentEventEntity, {
      id: eventId,
      subjectType: change.subject.type,
      subjectId: change.subject.id,
      purpose: change.purpose,
      status: change.status,
      evidence: change.evidence,
      auditEntry: audit!.id,
      recordedAt: now,
    });
    await manager
      .createQueryBuilder()
      .insert()
      .into(ConsentStateEntity)
      .values({ subjectType: change.subject.type, subjectId: change.subject.id, purpose: change.purpose, status: change.status, eventId, updatedAt: now })
      .orUpdate(['status', 'event_id', 'updated_at'], ['subject_type', 'subject_id', 'purpose'])
      .execute();
    return { eventId, audit: audit! };
  }

  /** Current consent of each subject for one purpose, in one query. */
  async lookup(subjects: SubjectRef[], purpose: string, manager: EntityManager = this.dataSource.manager): Promise<Map<string, ConsentLookup>> {
    const result = new Map<string, ConsentLookup>();
    for (const s of subjects) result.set(consentKey(s), 'none');
    const byType = new Map<string, string[]>();
    for (const s of subjects) byType.set(s.type, [...(byType.get(s.type) ?? []), s.id]);
    for (const [subjectType, ids] of byType) {
      const rows = await manager.getRepository(ConsentStateEntity).findBy({ subjectType, purpose, subjectId: In(ids) });
      for (const row of rows) result.set(consentKey({ type: row.subjectType as SubjectRef['type'], id: row.subjectId }), row.status);
    }
    return result;
  }

  async history(subject: SubjectRef): Promise<{ current: ConsentStateEntity[]; events: ConsentEventEntity[] }> {
    const where = { subjectType: subject.type, subjectId: subject.id };
    const [current, events] = await Promise.all([
      this.dataSource.getRepository(ConsentStateEntity).find({ where, order: { purpose: 'ASC' } }),
      this.dataSource.getRepository(ConsentEventEntity).find({ where, order: { recordedAt: 'ASC', id: 'ASC' } }),
    ]);
    return { current, events };
  }
}

export function consentKey(subject: SubjectRef): string {
  return `${subject.type}:${subject.id}`;
}
