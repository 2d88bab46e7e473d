import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * WhatsApp's ids of a message's copies that status reports said failed with a retryable code
 * (a rate limit, WhatsApp's own trouble) and that sluice has sent again, space-separated: later
 * reports about those copies are about ones already replaced.
 */
export class OutboxRetriedCopyPostgres1765065600000 implements MigrationInterface {
  name = 'OutboxRetriedCopyPostgres1765065600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbox_messages ADD COLUMN retried_message_ids text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbox_messages DROP COLUMN retried_message_ids`);
  }
}
