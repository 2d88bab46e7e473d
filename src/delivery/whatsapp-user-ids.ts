import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { inGroupsOf, Sql } from '../platform/database/sql.js';

/**
 * Which number a user id stands for as of `at` (the event's own time), or, `replaced`, that
 * WhatsApp replaced the user id then (the contact changed their number or user id): its number is
 * then the one it stood for, where known.
 */
export interface UserIdSighting {
  userId: string;
  waId: string | null;
  at: Date;
  replaced?: boolean;
}

/**
 * Which phone number each WhatsApp business-scoped user id (BSUID) stands for, as webhooks that
 * named both showed it. A contact who takes a WhatsApp username may later write without their
 * number; sluice keeps consents and messages under the number, and finds it here. A user id
 * WhatsApp replaced stays, marked so and with the number it stood for, so that a late webhook
 * about an older event cannot bring the old pair back. Cleared with the contact on an erasure,
 * and by the retention sweep.
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
    const latest = new Map<string, { waId: string | null; at: Date; replaced: boolean }>();
    const now = Date.now();
    for (const { userId, waId, at: stamped, replaced = false } of sightings) {
      // A stamp ahead of this clock would pin the row past later events and the retention sweep.
      const at = new Date(Math.min(stamped.getTime(), now));
      const known = latest.get(userId);
      if (!known || known.at.getTime() < at.getTime() || (known.at.getTime() === at.getTime() && (replaced || !known.replaced))) {
        // A replacement keeps the number the user id stood for.
        latest.set(userId, { waId: replaced ? (waId ?? known?.waId ?? null) : waId, at, replaced });
      }
    }
    for (const [userId, { waId, at, replaced }] of [...latest].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      // The same rule in SQL.
      await sql.execute(
        manager,
        `INSERT INTO whatsapp_user_ids (user_id, wa_id, learned_at, replaced) VALUES (${sql.params(4)})
         ON CONFLICT (user_id) DO UPDATE SET learned_at = excluded.learned_at, replaced = excluded.replaced,
           wa_id = CASE WHEN excluded.replaced = 1 THEN COALESCE(excluded.wa_id, whatsapp_user_ids.wa_id) ELSE excluded.wa_id END
         WHERE excluded.learned_at > whatsapp_user_ids.learned_at
            OR (excluded.learned_at = whatsapp_user_ids.learned_at AND (excluded.replaced = 1 OR whatsapp_user_ids.replaced = 0))`,
        [userId, waId, at.toISOString(), replaced ? 1 : 0],
      );
    }
  }

  /** The numbers of the user ids sluice has seen with one (and not seen replaced since). */
  async numbersOf(manager: EntityManager, userIds: string[]): Promise<Map<string, string>> {
    const sql = Sql.of(manager);
    const numbers = new Map<string, string>();
    for (const group of inGroupsOf([...new Set(userIds)])) {
      const rows = await sql.rows<{ user_id: string; wa_id: string }>(
        manager,
        `SELECT user_id, wa_id FROM whatsapp_user_ids WHERE replaced = 0 AND user_id IN (${sql.params(group.length)})`,
        group,
      );
      for (const row of rows) numbers.set(row.user_id, row.wa_id);
    }
    return numbers;
  }

  /** The user ids that stood for any of the numbers as of `asOf` (seen with one then or before, not replaced). */
  async userIdsOf(manager: EntityManager, waIds: string[], asOf: Date): Promise<string[]> {
    const sql = Sql.of(manager);
    const userIds: string[] = [];
    for (const group of inGroupsOf([...new Set(waIds)])) {
      const rows = await sql.rows<{ user_id: string }>(
        manager,
        `SELECT user_id FROM whatsapp_user_ids WHERE replaced = 0 AND learned_at <= ${sql.params(1)} AND wa_id IN (${sql.params(group.length, 2)})`,
        [asOf.toISOString(), ...group],
      );
      userIds.push(...rows.map((row) => row.user_id));
    }
    return userIds;
  }
}
