import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { OutboxMessageEntity } from './infrastructure/delivery.entities.js';

/**
 * Claims outbox rows for one worker with a lease. PostgreSQL uses FOR UPDATE SKIP LOCKED so
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
    const p = (n: number) => (postgres ? `$${n}` : '?');
    const candidates = `SELECT o.id FROM outbox_messages o
      WHERE (o.state = 'pending' OR (o.state = 'claimed' AND o.claim_expires_at < ${p(4)}))
        AND EXISTS (SELECT 1 FROM audit_entries a WHERE a.id = o.decision_entry)
      ORDER BY o.created_at, o.id
      LIMIT ${limit}${postgres ? ' FOR UPDATE OF o SKIP LOCKED' : ''}`;
    const rows: Record<string, unknown>[] = await manager.query(
      `UPDATE outbox_messages SET state = 'claimed', claimed_by = ${p(1)}, claim_expires_at = ${p(2)},
         attempts = attempts + 1, updated_at = ${p(3)}
       WHERE id IN (${candidates}) RETURNING id`,
      // SQLite binds ? in textual order, so the numbering follows the text for both dialects.
      [workerId, expires, nowText, nowText],
    );
    // (LIMIT is written inline: better-sqlite3 binds numbers as REAL, which LIMIT refuses.)
    // RETURNING's raw shape differs per driver; read the claimed rows back as entities.
    const ids = (postgres ? (rows[0] as unknown as Record<string, unknown>[]) : rows).map((r) => String(r.id));
    if (ids.length === 0) return [];
    return manager.getRepository(OutboxMessageEntity).find({ where: ids.map((id) => ({ id })), order: { createdAt: 'ASC', id: 'ASC' } });
  }
}
