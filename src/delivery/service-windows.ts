import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { placeholders } from './infrastructure/sql.js';

/** WhatsApp's customer service window: free-form messages only within 24 hours of the contact's last message. */
const SERVICE_WINDOW_MS = 24 * 60 * 60 * 1000;

/**
 * What sluice knows of each contact's customer service window: the time of the contact's last
 * inbound message, as WhatsApp stamped it in the webhook. No inbound message known means no open
 * window; only a template may then start the conversation.
 */
@Injectable()
export class ServiceWindows {
  async recordInbound(manager: EntityManager, waId: string, at: Date): Promise<void> {
    const p = placeholders(manager);
    // Webhooks arrive out of order: keep the latest time.
    await manager.query(
      `INSERT INTO whatsapp_contacts (wa_id, last_inbound_at) VALUES (${p(1)}, ${p(2)})
       ON CONFLICT (wa_id) DO UPDATE SET last_inbound_at = CASE
         WHEN excluded.last_inbound_at > whatsapp_contacts.last_inbound_at THEN excluded.last_inbound_at
         ELSE whatsapp_contacts.last_inbound_at END`,
      [waId, at.toISOString()],
    );
  }

  /**
   * WhatsApp refused a message as outside the contact's window at `at`: the window sluice saw open
   * was closed then, unless the contact wrote after it. Their next message waits for a new inbound one.
   */
  async closeAsOf(manager: EntityManager, waId: string, at: Date): Promise<void> {
    const p = placeholders(manager);
    await manager.query(`UPDATE whatsapp_contacts SET last_inbound_at = ${p(1)} WHERE wa_id = ${p(2)} AND last_inbound_at > ${p(3)} AND last_inbound_at <= ${p(4)}`, [
      new Date(at.getTime() - SERVICE_WINDOW_MS).toISOString(),
      waId,
      new Date(at.getTime() - SERVICE_WINDOW_MS).toISOString(),
      at.toISOString(),
    ]);
  }

  /** Those of the contacts whose window is open at `now`. */
  async openAmong(manager: EntityManager, waIds: string[], now: Date): Promise<Set<string>> {
    const unique = [...new Set(waIds)];
    if (unique.length === 0) return new Set();
    const p = placeholders(manager);
    const rows = (await manager.query(
      `SELECT wa_id FROM whatsapp_contacts WHERE last_inbound_at > ${p(1)} AND wa_id IN (${unique.map((_, i) => p(i + 2)).join(', ')})`,
      [new Date(now.getTime() - SERVICE_WINDOW_MS).toISOString(), ...unique],
    )) as { wa_id: string }[];
    return new Set(rows.map((r) => r.wa_id));
  }
}
