import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager, In, IsNull } from 'typeorm';
import { whatsAppIdForms } from '../consent/subject.js';
import { OutboxMessageEntity, type OutboxState, replacedCopies } from './infrastructure/delivery.entities.js';
import { placeholders, updatedRows } from './infrastructure/sql.js';

/** What settling a claimed message writes besides releasing the claim. */
export type Settlement =
  | { state: 'sent'; messageId: string }
  | { state: 'failed'; errorCode: string }
  | { state: 'cancelled' }
  | { state: 'pending'; notBefore: string; uncounted?: true };

/**
 * The outbox rows' life cycle. Claims carry a lease: PostgreSQL uses FOR UPDATE SKIP LOCKED so
 * workers of several replicas never take the same row; SQLite has one writer, so a plain UPDATE
 * is already exclusive. A row whose lease ran out (its worker died) can be claimed again.
 * Only rows whose deciding entry is in the log are claimable: audit before effect.
 */
@Injectable()
export class OutboxRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async claim(manager: EntityManager, workerId: string, limit: number, leaseMs: number): Promise<OutboxMessageEntity[]> {
    const now = new Date();
    const nowText = now.toISOString();
    const expires = new Date(now.getTime() + leaseMs).toISOString();
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('claim limit must be a positive integer');
    const postgres = this.dataSource.options.type === 'postgres';
    const p = placeholders(manager);
    const candidates = `SELECT o.id FROM outbox_messages o
      WHERE ((o.state = 'pending' AND (o.not_before IS NULL OR o.not_before <= ${p(4)}))
          OR (o.state = 'claimed' AND o.claim_expires_at < ${p(5)}))
        AND EXISTS (SELECT 1 FROM audit_entries a WHERE a.id = o.decision_entry)
      ORDER BY o.created_at, o.id
      LIMIT ${limit}${postgres ? ' FOR UPDATE OF o SKIP LOCKED' : ''}`;
    const rows = updatedRows<{ id: string }>(
      manager,
      await manager.query(
        `UPDATE outbox_messages SET state = 'claimed', claimed_by = ${p(1)}, claim_expires_at = ${p(2)}, updated_at = ${p(3)}
         WHERE id IN (${candidates}) RETURNING id`,
        // SQLite binds ? in textual order, so the numbering follows the text for both dialects.
        [workerId, expires, nowText, nowText, nowText],
      ),
    );
    // (LIMIT is written inline: better-sqlite3 binds numbers as REAL, which LIMIT refuses.)
    if (rows.length === 0) return [];
    return manager.getRepository(OutboxMessageEntity).find({ where: { id: In(rows.map((r) => r.id)) }, order: { createdAt: 'ASC', id: 'ASC' } });
  }

  /**
   * Marks attempts as started on messages this worker still holds, with a lease that outlives
   * them; returns the ids it could start. From here until the outcome is recorded, a crash
   * leaves the attempt's outcome unknown.
   */
  async startAttempts(manager: EntityManager, workerId: string, ids: string[], startedAt: string, claimExpiresAt: string): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const p = placeholders(manager);
    const rows = updatedRows<{ id: string }>(
      manager,
      await manager.query(
        `UPDATE outbox_messages SET attempts = attempts + 1, attempt_started_at = ${p(1)}, claim_expires_at = ${p(2)}, updated_at = ${p(3)}
         WHERE state = 'claimed' AND claimed_by = ${p(4)} AND id IN (${ids.map((_, i) => p(i + 5)).join(', ')}) RETURNING id`,
        [startedAt, claimExpiresAt, startedAt, workerId, ...ids],
      ),
    );
    return new Set(rows.map((r) => r.id));
  }

  /**
   * Ends this worker's claims with their outcomes, one statement per kind of outcome; returns the
   * ids settled. A claim another worker took over meanwhile is left alone. On PostgreSQL the rows
   * are locked first, in id order as status reports lock them (lockReported): updated by outcome
   * alone, a settlement and a report could each hold a row the other waits for (a deadlock).
   */
  async settleAll(manager: EntityManager, workerId: string, items: { id: string; settlement: Settlement }[]): Promise<Set<string>> {
    const settled = new Set<string>();
    const now = new Date().toISOString();
    if (this.dataSource.options.type === 'postgres' && items.length > 1) {
      await manager.query('SELECT id FROM outbox_messages WHERE id = ANY($1) ORDER BY id FOR UPDATE', [items.map((item) => item.id)]);
    }
    for (const state of ['sent', 'failed', 'cancelled', 'pending'] as const) {
      const group = items.filter((item) => item.settlement.state === state);
      if (group.length === 0) continue;
      // Parameters are bound in the order they appear in the text (SQLite numbers ? that way).
      const p = placeholders(manager);
      const params: unknown[] = [];
      const bind = (value: unknown) => p(params.push(value));
      const perRow = (value: (s: Settlement) => string) => `CASE id ${group.map((g) => `WHEN ${bind(g.id)} THEN ${bind(value(g.settlement))}`).join(' ')} END`;
      const sets = [`state = ${bind(state)}`, 'claimed_by = NULL', 'claim_expires_at = NULL', 'attempt_started_at = NULL', `updated_at = ${bind(now)}`];
      if (state === 'sent') sets.push(`message_id = ${perRow((s) => (s as { messageId: string }).messageId)}`);
      if (state === 'failed') sets.push(`error_code = ${perRow((s) => (s as { errorCode: string }).errorCode)}`);
      sets.push(state === 'pending' ? `not_before = ${perRow((s) => (s as { notBefore: string }).notBefore)}` : 'not_before = NULL');
      // An attempt the business account's trouble refused does not count toward the message's attempts.
      const uncounted = group.filter((g) => g.settlement.state === 'pending' && g.settlement.uncounted);
      if (uncounted.length > 0) sets.push(`attempts = attempts - CASE WHEN id IN (${uncounted.map((g) => bind(g.id)).join(', ')}) THEN 1 ELSE 0 END`);
      const sql = `UPDATE outbox_messages SET ${sets.join(', ')}
        WHERE state = 'claimed' AND claimed_by = ${bind(workerId)} AND id IN (${group.map((g) => bind(g.id)).join(', ')}) RETURNING id`;
      for (const row of updatedRows<{ id: string }>(manager, await manager.query(sql, params))) settled.add(row.id);
    }
    return settled;
  }

  /** The contact's messages that no attempt is sending right now: waiting, or claimed but not started. */
  idleMessagesFor(manager: EntityManager, waId: string): Promise<OutboxMessageEntity[]> {
    return manager.getRepository(OutboxMessageEntity).find({
      where: [
        { waId, state: 'pending' },
        { waId, state: 'claimed', attemptStartedAt: IsNull() },
      ],
      order: { createdAt: 'ASC', id: 'ASC' },
    });
  }

  /** Cancels a message unless an attempt started meanwhile (then the worker's consent check decides). */
  async cancelIfIdle(manager: EntityManager, message: { id: string; state: OutboxState }): Promise<boolean> {
    const { affected } = await manager.getRepository(OutboxMessageEntity).update(
      { id: message.id, state: message.state, attemptStartedAt: IsNull() },
      { state: 'cancelled', claimedBy: null, claimExpiresAt: null, notBefore: null, updatedAt: new Date().toISOString() },
    );
    return affected === 1;
  }

  /**
   * Locks the rows of the messages status reports may be about until the transaction ends, all in
   * one statement and in id order (PostgreSQL; SQLite runs one transaction at a time): two
   * reports about one message (a webhook delivered twice at once, a failed copy and another
   * copy's delivery) are then weighed one after the other, each seeing what the other did, and
   * two deliveries never wait for each other's rows crosswise.
   */
  async lockReported(manager: EntityManager, reports: { outboxId?: string; messageId: string; recipient: string }[]): Promise<void> {
    if (this.dataSource.options.type !== 'postgres' || reports.length === 0) return;
    await manager.query(
      'SELECT id FROM outbox_messages WHERE wa_id = ANY($1) AND (id = ANY($2) OR message_id = ANY($3)) ORDER BY id FOR UPDATE',
      [[...new Set(reports.flatMap((r) => whatsAppIdForms(r.recipient)))], reports.flatMap((r) => (r.outboxId ? [r.outboxId] : [])), reports.map((r) => r.messageId)],
    );
  }

  /**
   * The message a status report is about: by the outbox id sluice sent along (it survives a lost
   * send response), else by WhatsApp's message id. The recipient may be named by another form of
   * the number the message was queued to (an Argentinian mobile with its 9).
   */
  async findReported(manager: EntityManager, report: { outboxId?: string; messageId: string; recipient: string }): Promise<OutboxMessageEntity | null> {
    const repository = manager.getRepository(OutboxMessageEntity);
    const waId = In(whatsAppIdForms(report.recipient));
    const byOutbox = report.outboxId ? await repository.findOneBy({ id: report.outboxId, waId }) : null;
    return byOutbox ?? repository.findOneBy({ messageId: report.messageId, waId });
  }

  /**
   * Queues a sent message again after WhatsApp reported its copy failed with a retryable code,
   * unless another report or worker has moved it meanwhile. The copy's id is kept aside so that
   * its later reports are known for what they are. `uncounted`: the copy's attempt is given back.
   */
  async requeueFailedCopy(manager: EntityManager, message: OutboxMessageEntity & { messageId: string }, notBefore: string, { uncounted = false } = {}): Promise<boolean> {
    const { affected } = await manager.getRepository(OutboxMessageEntity).update(
      { id: message.id, state: 'sent', messageId: message.messageId },
      {
        state: 'pending',
        notBefore,
        messageId: null,
        retriedMessageIds: [...replacedCopies(message), message.messageId].join(' '),
        updatedAt: new Date().toISOString(),
        ...(uncounted ? { attempts: Math.max(0, message.attempts - 1) } : {}),
      },
    );
    return affected === 1;
  }

  /** Records WhatsApp's message id learnt from a status report, if the send response never brought it. */
  async learnMessageId(manager: EntityManager, id: string, messageId: string): Promise<void> {
    await manager.getRepository(OutboxMessageEntity).update({ id, messageId: IsNull() }, { messageId, updatedAt: new Date().toISOString() });
  }

  async recordError(manager: EntityManager, id: string, errorCode: string): Promise<void> {
    await manager.getRepository(OutboxMessageEntity).update({ id }, { errorCode, updatedAt: new Date().toISOString() });
  }
}
