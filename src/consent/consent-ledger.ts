import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AuditLogService, type QueuedEntry } from '../audit/audit-log.service.js';
import { auditablePurpose, UNLISTED_PURPOSE } from '../audit/domain/auditable-purpose.js';
import { canonicalJson } from '../audit/domain/canonical-json.js';
import { openSealedField, subjectPseudonym } from '../audit/domain/pseudonym.js';
import { timeOrderedId } from '../audit/domain/random-pool.js';
import { SubjectKeyService } from '../audit/subject-keys.service.js';
import { ReadBatcher } from '../platform/database/read-batcher.js';
import { inGroupsOf, Sql } from '../platform/database/sql.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';
import { Traced } from '../platform/observability/traced.js';
import { PolicyRegistry } from '../policy/policy-registry.js';
import { auditableEvidenceMethod } from './evidence-methods.js';
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
  /** Lookups outside a transaction, coalesced: concurrent decisions share one query. */
  private readonly committed: ReadBatcher<{ subjects: SubjectRef[]; purpose: string }, Map<string, ConsentLookup>>;

  constructor(
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(SubjectKeyService) private readonly subjectKeys: SubjectKeyService,
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(PolicyRegistry) private readonly policies: PolicyRegistry,
  ) {
    this.committed = new ReadBatcher(transactions, (manager, asked) => this.lookupAll(manager, asked));
  }

  /**
   * Records a change of consent: always in the history and the log, and in the current state
   * unless it is a grant over a withdrawal captured no earlier than it (an old form imported after
   * an opt-out does not undo it). A withdrawal always applies: the safe side, and capture times
   * (WhatsApp's in whole seconds) cannot order changes made in the same moment. The state keeps
   * the latest capture time it has seen, so that an old withdrawal imported late does not let an
   * old grant through after it. Returns the state for the purpose after it.
   */
  async record(manager: EntityManager, change: ConsentChange): Promise<{ eventId: string; audit: QueuedEntry; current: ConsentStatus }> {
    const eventId = timeOrderedId('cns_');
    const now = new Date().toISOString();
    const keys = await this.subjectKeys.keysFor(manager, [change.subject]);
    const pseudonym = keys.pseudonym(change.subject);
    // A purpose no policy names is held under the person's key only: the ledger's copy sealed,
    // the log's a keyed digest (the report checks the one against the other).
    const purpose = auditablePurpose(change.purpose, this.policies.bundle.purposes, (value) => keys.digest(change.subject, value));
    const [audit] = await this.auditLog.append(manager, [
      {
        kind: change.status === 'granted' ? 'consent.granted' : 'consent.withdrawn',
        body: {
          consent: eventId,
          subject: pseudonym,
          subjectType: change.subject.type,
          ...purpose,
          // The evidence may quote the person; the log keeps a well-known method and a keyed digest only.
          evidence: {
            method: auditableEvidenceMethod(change.evidence.method),
            digest: keys.digest(change.subject, canonicalJson(change.evidence)),
          },
        },
      },
    ]);
    // The ledger keeps the proof of consent (Art. 7(1)) under the person's key: the pseudonym and
    // the sealed evidence become unlinkable when the key is destroyed (erasure). It is append-only
    // too, so it holds the purpose as the log does.
    await manager.insert(ConsentEventEntity, {
      id: eventId,
      subjectType: change.subject.type,
      subjectId: pseudonym,
      purpose: purpose.purpose,
      status: change.status,
      evidence: {
        sealed: keys.seal(change.subject, canonicalJson(change.evidence), `consent ${eventId}`),
        ...(purpose.purpose === UNLISTED_PURPOSE ? { purpose: keys.seal(change.subject, change.purpose, `consent ${eventId} purpose`) } : {}),
      },
      auditEntry: audit!.id,
      recordedAt: now,
    });
    const capturedAt = change.evidence.capturedAt === undefined ? now : new Date(change.evidence.capturedAt).toISOString();
    const sql = Sql.of(manager);
    const subject = [change.subject.type, change.subject.id, change.purpose];
    await sql.execute(
      manager,
      `INSERT INTO consent_states (subject_type, subject_id, purpose, status, event_id, updated_at, captured_at) VALUES (${sql.params(7)})
       ON CONFLICT (subject_type, subject_id, purpose) DO UPDATE SET status = excluded.status, event_id = excluded.event_id, updated_at = excluded.updated_at,
         captured_at = CASE WHEN consent_states.captured_at IS NULL OR consent_states.captured_at < excluded.captured_at THEN excluded.captured_at ELSE consent_states.captured_at END
       WHERE excluded.status = 'withdrawn' OR consent_states.status = 'granted' OR consent_states.captured_at IS NULL OR consent_states.captured_at < excluded.captured_at`,
      [...subject, change.status, eventId, now, capturedAt],
    );
    const [state] = await sql.rows<{ status: ConsentStatus }>(manager, `SELECT status FROM consent_states WHERE subject_type = ${sql.params(1)} AND subject_id = ${sql.params(1, 2)} AND purpose = ${sql.params(1, 3)}`, subject);
    return { eventId, audit: audit!, current: state!.status };
  }

  /**
   * Withdraws every purpose the subject has granted, and each of `purposes` too, each as a
   * withdrawal recorded and audited like any other (an opt-out such as a WhatsApp STOP). A purpose
   * never granted is withdrawn as well: the opt-out then stands against a grant captured before
   * it. A purpose withdrawn already is withdrawn again only by an opt-out captured after that
   * withdrawal: it must stand against a grant captured between the two (the state keeps the latest
   * capture time), while the same opt-out delivered twice records nothing twice. Returns the ids
   * of the withdrawals' audit entries.
   */
  async withdrawAll(manager: EntityManager, subject: SubjectRef, evidence: ConsentChange['evidence'], purposes: readonly string[] = []): Promise<string[]> {
    const states = await manager.getRepository(ConsentStateEntity).find({ where: { subjectType: subject.type, subjectId: subject.id } });
    const capturedAt = new Date(evidence.capturedAt ?? Date.now()).toISOString();
    const standing = new Set(states.filter((state) => state.status === 'withdrawn' && state.capturedAt !== null && state.capturedAt >= capturedAt).map((state) => state.purpose));
    const wanted = [...new Set([...states.map((state) => state.purpose), ...purposes])].filter((purpose) => !standing.has(purpose)).sort();
    const entries: string[] = [];
    for (const purpose of wanted) entries.push((await this.record(manager, { subject, purpose, status: 'withdrawn', evidence })).audit.id);
    return entries;
  }

  /**
   * Current consent of each subject for one purpose: in the caller's transaction, or else as
   * committed (never a grant still inside another transaction that may roll back).
   */
  @Traced('sluice.consent.lookup', { attributes: (subjects: SubjectRef[]) => ({ 'sluice.consent.subjects': subjects.length }) })
  async lookup(subjects: SubjectRef[], purpose: string, manager?: EntityManager): Promise<Map<string, ConsentLookup>> {
    if (subjects.length === 0) return new Map();
    if (!manager) return this.committed.get({ subjects, purpose });
    const [result] = await this.lookupAll(manager, [{ subjects, purpose }]);
    return result!;
  }

  /** Answers several lookups with one query per purpose (per IN_LIST_MAX subjects). */
  private async lookupAll(manager: EntityManager, asked: { subjects: SubjectRef[]; purpose: string }[]): Promise<Map<string, ConsentLookup>[]> {
    const sql = Sql.of(manager);
    const found = new Map<string, ConsentStatus>();
    for (const purpose of new Set(asked.map((a) => a.purpose))) {
      const distinct = new Map<string, SubjectRef>();
      for (const { subjects } of asked.filter((a) => a.purpose === purpose)) for (const s of subjects) distinct.set(consentKey(s), s);
      for (const group of inGroupsOf([...distinct.values()])) {
        const byType = new Map<string, string[]>();
        for (const s of group) {
          const ids = byType.get(s.type);
          if (ids) ids.push(s.id);
          else byType.set(s.type, [s.id]);
        }
        const params: string[] = [purpose];
        const byTypeWhere = [...byType].map(([subjectType, ids]) => {
          const first = params.length + 1;
          params.push(subjectType, ...ids);
          return `(subject_type = ${sql.params(1, first)} AND subject_id IN (${sql.params(ids.length, first + 1)}))`;
        });
        const rows = await sql.rows<{ subject_type: SubjectRef['type']; subject_id: string; status: ConsentStatus }>(
          manager,
          `SELECT subject_type, subject_id, status FROM consent_states WHERE purpose = ${sql.params(1)} AND (${byTypeWhere.join(' OR ')})`,
          params,
        );
        for (const row of rows) found.set(`${purpose}|${consentKey({ type: row.subject_type, id: row.subject_id })}`, row.status);
      }
    }
    return asked.map(({ subjects, purpose }) => new Map(subjects.map((s) => [consentKey(s), found.get(`${purpose}|${consentKey(s)}`) ?? 'none'])));
  }

  /** The subject's current consents and their history, evidence and unlisted purposes opened with the subject's key. */
  async history(subject: SubjectRef): Promise<{ current: ConsentStateEntity[]; events: (ConsentEventEntity & { evidence: Record<string, unknown> })[] }> {
    const manager = this.transactions.reader.manager;
    const current = await manager.getRepository(ConsentStateEntity).find({ where: { subjectType: subject.type, subjectId: subject.id }, order: { purpose: 'ASC' } });
    const key = await this.subjectKeys.existingKey(manager, subject);
    if (!key) return { current, events: [] };
    const rows = await manager
      .getRepository(ConsentEventEntity)
      .find({ where: { subjectType: subject.type, subjectId: subjectPseudonym(key, subject) }, order: { recordedAt: 'ASC', id: 'ASC' } });
    const events = rows.map((row) => {
      const opened = openSealedField(key, String(row.evidence.sealed ?? ''), `consent ${row.id}`);
      const purpose = row.purpose === UNLISTED_PURPOSE ? openSealedField(key, String(row.evidence.purpose ?? ''), `consent ${row.id} purpose`) : row.purpose;
      return Object.assign(row, { purpose: purpose ?? row.purpose, evidence: opened === undefined ? {} : (JSON.parse(opened) as Record<string, unknown>) });
    });
    return { current, events };
  }

  /** Everyone the current-state projection holds, and whether they have any purpose granted now. */
  async subjectsHeld(manager: EntityManager): Promise<{ subject: SubjectRef; granted: boolean }[]> {
    const rows = await Sql.of(manager).rows<{ subject_type: string; subject_id: string; granted: number | string }>(
      manager,
      `SELECT subject_type, subject_id, MAX(CASE WHEN status = 'granted' THEN 1 ELSE 0 END) AS granted FROM consent_states GROUP BY subject_type, subject_id`,
    );
    return rows.map((row) => ({ subject: { type: row.subject_type, id: row.subject_id } as SubjectRef, granted: Number(row.granted) === 1 }));
  }

  /** Removes the subject from the current-state projection (erasure); the sealed history stays, unlinkable. Whether they were in it. */
  async forget(manager: EntityManager, subject: SubjectRef): Promise<boolean> {
    const repo = manager.getRepository(ConsentStateEntity);
    const held = await repo.existsBy({ subjectType: subject.type, subjectId: subject.id });
    if (held) await repo.delete({ subjectType: subject.type, subjectId: subject.id });
    return held;
  }
}

export function consentKey(subject: SubjectRef): string {
  return `${subject.type}:${subject.id}`;
}
