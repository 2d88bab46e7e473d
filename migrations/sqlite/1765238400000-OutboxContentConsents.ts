import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The consents a message's content rests on besides its recipient's: the author and the tagged
 * people whose data crosses in it, each with the purpose their consent was asked for (JSON), so
 * that a withdrawal of any of them before the message goes stops it. NULL when there are none,
 * and for rows queued before it was kept.
 */
export class OutboxContentConsentsSqlite1765238400000 implements MigrationInterface {
  name = 'OutboxContentConsentsSqlite1765238400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbox_messages ADD COLUMN content_consents text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbox_messages DROP COLUMN content_consents`);
  }
}
