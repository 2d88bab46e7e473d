import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { inGroupsOf, Sql } from '../platform/database/sql.js';

/**
 * Which phone number each WhatsApp business-scoped user id (BSUID) stands for, as webhooks that
 * named both showed it. A contact who takes a WhatsApp username may later write without their
 * number; sluice keeps consents and messages under the number, and finds it here. Cleared with
 * the contact on an erasure, and by the retention sweep.
 */
@Injectable()
export class WhatsAppUserIds {
  /**
   * `at`: when WhatsApp saw the two together (the event's own time). A late or repeated webhook
   * about an older event does not undo what a newer one showed.
   */
  async learn(manager: EntityManager, pairs: { userId: string; waId: string; at: Date }[]): Promise<void> {
    const sql = Sql.of(manager);
    const latest = new Map<string, { waId: string; at: Date }>();
    const now = Date.now();
    for (const { userId, waId, at: stamped } of pairs) {
      // A stamp ahead of this clock would pin the row past later events and the retention sweep.
      const at = new Date(Math.min(stamped.getTime(), now));
      const known = latest.get(userId);
      if (!known || known.at.getTime() <= at.getTime()) latest.set(userId, { waId, at });
    }
    // In key order, so that two webhooks naming the same contacts never wait for each other crosswise.
    for (const [userId, { waId, at }] of [...latest].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      await sql.execute(
        manager,
        `INSERT INTO whatsapp_user_ids (user_id, wa_id, learned_at) VALUES (${sql.params(3)})
         ON CONFLICT (user_id) DO UPDATE SET wa_id = excluded.wa_id, learned_at = excluded.learned_at
         WHERE excluded.learned_at >= whatsapp_user_ids.learned_at`,
        [userId, waId, at.toISOString()],
      );
    }
  }

  /** Drops user ids WhatsApp has replaced (a contact's number or user id changed): nothing names them again. */
  async forget(manager: EntityManager, userIds: string[]): Promise<void> {
    const sql = Sql.of(manager);
    for (const group of inGroupsOf([...new Set(userIds)].sort())) {
      await sql.execute(manager, `DELETE FROM whatsapp_user_ids WHERE user_id IN (${sql.params(group.length)})`, group);
    }
  }

  /** The numbers of the user ids sluice has seen with one. */
  async numbersOf(manager: EntityManager, userIds: string[]): Promise<Map<string, string>> {
    const sql = Sql.of(manager);
    const numbers = new Map<string, string>();
    for (const group of inGroupsOf([...new Set(userIds)])) {
      const rows = await sql.rows<{ user_id: string; wa_id: string }>(manager, `SELECT user_id, wa_id FROM whatsapp_user_ids WHERE user_id IN (${sql.params(group.length)})`, group);
      for (const row of rows) numbers.set(row.user_id, row.wa_id);
    }
    return numbers;
  }
}
