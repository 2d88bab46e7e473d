import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { placeholders } from '../infrastructure/sql.js';

/** Meta retries an undelivered webhook for up to 7 days: an id older than twice that cannot come back. */
const REMEMBER_MS = 14 * 24 * 60 * 60 * 1000;

/**
 * The inbound messages already handled: a webhook may deliver the same message twice. Kept as
 * SHA-256 of WhatsApp's message id, which holds the sender's number (wamid.HBgL... is base64 of
 * it) next to random bytes: the digest still tells a repeat, and no longer tells whose it was.
 */
@Injectable()
export class InboundMessageLog {
  /** True the first time the message id is seen (and from then on remembered). */
  async firstSighting(manager: EntityManager, messageId: string, at: Date): Promise<boolean> {
    const p = placeholders(manager);
    const rows = (await manager.query(
      `INSERT INTO whatsapp_inbound_messages (id, received_at) VALUES (${p(1)}, ${p(2)}) ON CONFLICT (id) DO NOTHING RETURNING id`,
      [createHash('sha256').update(messageId).digest('base64url'), at.toISOString()],
    )) as unknown[];
    return rows.length === 1;
  }

  async forgetExpired(manager: EntityManager, now: Date): Promise<void> {
    const p = placeholders(manager);
    await manager.query(`DELETE FROM whatsapp_inbound_messages WHERE received_at < ${p(1)}`, [new Date(now.getTime() - REMEMBER_MS).toISOString()]);
  }
}
