import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { inGroupsOf, Sql } from '../platform/database/sql.js';

/**
 * Which number a user id stands for as of `at` (the event's own time), or, with `waId` null, that
 * WhatsApp replaced the user id then (the contact changed their number or user id).
 */
export interface UserIdSighting {
  userId: string;
  waId: string | null;
  at: Date;
}

/**
 * Which phone number each WhatsApp business-scoped user id (BSUID) stands for, as webhooks that
 * named both showed it. A contact who takes a WhatsApp username may later write without their
 * number; sluice keeps consents and messages under the number, and finds it here. A replaced
 * user id stays, without a number, so that a late webhook about an older event cannot bring the
 * old pair back. Cleared with the contact on an erasure, and by the retention sweep.
 */
@Injectable()
export class WhatsAppUserIds {
  /**
   * Records what each sighting showed, unless a newer event already showed otherwise; at the same
   * time, a replacement stands over a number. In one pass ordered by user id, so that two
   * webhooks naming the same contacts never wait for each other crosswise.
   */
  async learn(manager: EntityManager, sightings: UserIdSighting[]): Promise<void> {
    const sql = Sql.of(manager);
    const latest = new Map<string, { waId: string | null; at: Date }>();
    const now = Date.now();
    for (const { userId, waId, at: stamped } of sightings) {
      // A stamp ahead of this clock would pin the row past later events and the retention sweep.
      const at = new Date(Math.min(stamped.getTime(), now));
      const known = latest.get(userId);
      if (!known || known.at.getTime() < at.getTime() || (known.at.getTime() === at.getTime() && (waId === null || known.waId !== null))) latest.set(userId, { waId, at });
    }
    for (const [userId, { waId, at }] of [...latest].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      await sql.execute(
        manager,
        `INSERT INTO whatsapp_user_ids (user_id, wa_id, learned_at) VALUES (${sql.params(3)})
         ON CONFLICT (user_id) DO UPDATE SET wa_id = excluded.wa_id, learned_at = excluded.learned_at
         WHERE excluded.learned_at > whatsapp_user_ids.learned_at
            OR (excluded.learned_at = whatsapp_user_ids.learned_at AND (excluded.wa_id IS NULL OR whatsapp_user_ids.wa_id IS NOT NULL))`,
        [userId, waId, at.toISOString()],
      );
    }
  }

  /** The numbers of the user ids sluice has seen with one (and not seen replaced since). */
  async numbersOf(manager: EntityManager, userIds: string[]): Promise<Map<string, string>> {
    const sql = Sql.of(manager);
    const numbers = new Map<string, string>();
    for (const group of inGroupsOf([...new Set(userIds)])) {
      const rows = await sql.rows<{ user_id: string; wa_id: string }>(manager, `SELECT user_id, wa_id FROM whatsapp_user_ids WHERE wa_id IS NOT NULL AND user_id IN (${sql.params(group.length)})`, group);
      for (const row of rows) numbers.set(row.user_id, row.wa_id);
    }
    return numbers;
  }

  /** The user ids that stand for any of the numbers. */
  async userIdsOf(manager: EntityManager, waIds: string[]): Promise<string[]> {
    const sql = Sql.of(manager);
    const userIds: string[] = [];
    for (const group of inGroupsOf([...new Set(waIds)])) {
      const rows = await sql.rows<{ user_id: string }>(manager, `SELECT user_id FROM whatsapp_user_ids WHERE wa_id IN (${sql.params(group.length)})`, group);
      userIds.push(...rows.map((row) => row.user_id));
    }
    return userIds;
  }
}
