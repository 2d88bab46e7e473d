import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * WhatsApp's id of a message's copy that a status report said failed with a retryable code
 * (a rate limit, WhatsApp's own trouble) and that sluice has sent again: later reports about that
 * copy are about one already replaced.
 */
export class OutboxRetriedCopyPostgres1765065600000 implements MigrationInterface {
  name = 'OutboxRetriedCopyPostgres1765065600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbox_messages ADD COLUMN retried_message_id varchar(128)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbox_messages DROP COLUMN retried_message_id`);
  }
}
