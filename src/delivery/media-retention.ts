import type { EntityManager } from 'typeorm';
import { inGroupsOf, Sql } from '../platform/database/sql.js';

/** How long a share's minimised media may be kept for a message that was sent but might be sent again. */
export interface MediaHold {
  /** After a message is sent, how long WhatsApp's report of its copy failing may still send it again. */
  holdAfterSendMs: number;
}

/**
 * Deletes the minimised media of the shares given (of every share, without `shareIds`) none of
 * whose messages can still be sent: none waits or is being sent, and none was sent less than
 * `holdAfterSendMs` ago to a recipient it has not yet reached, even on its last attempt. WhatsApp
 * may report such a copy failed with a retryable code, or one about the business account (which
 * does not count as an attempt), and the message then goes out again with the same photo or video
 * (see RecordDeliveryStatusesHandler). One statement: a share's messages are
 * weighed as this transaction sees them.
 */
export async function releaseFinishedMedia(manager: EntityManager, hold: MediaHold, now: Date, shareIds?: Iterable<string>): Promise<void> {
  const sql = Sql.of(manager);
  const cutoff = new Date(now.getTime() - hold.holdAfterSendMs).toISOString();
  // Its parameters come first in the text: SQLite binds `?` in order.
  const nothingSendable = `NOT EXISTS (SELECT 1 FROM outbox_messages o WHERE o.share_id = media_objects.share_id AND (
      o.state IN ('pending', 'claimed')
      OR (o.state = 'sent' AND o.message_id IS NOT NULL AND o.updated_at > ${sql.params(1)}
          AND EXISTS (SELECT 1 FROM share_recipients r WHERE r.share_id = o.share_id AND r.wa_id = o.wa_id AND r.delivery_state = 'sent'))))`;
  if (shareIds === undefined) {
    await sql.execute(manager, `DELETE FROM media_objects WHERE ${nothingSendable}`, [cutoff]);
    return;
  }
  for (const group of inGroupsOf([...new Set(shareIds)])) {
    await sql.execute(manager, `DELETE FROM media_objects WHERE ${nothingSendable} AND share_id IN (${sql.params(group.length, 2)})`, [cutoff, ...group]);
  }
}
