import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The purpose whose consent a message's recipient must still hold when it is sent: the policy's
 * recipient consent purpose, which may differ from the share's purpose; null when the policy asks
 * for none (a lawful basis other than consent). Rows queued before it was kept get the share's
 * purpose, which is what they were checked against until now.
 */
export class OutboxConsentPurposePostgres1764892800000 implements MigrationInterface {
  name = 'OutboxConsentPurposePostgres1764892800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbox_messages ADD COLUMN consent_purpose varchar(100)`);
    await q.query(`UPDATE outbox_messages SET consent_purpose = purpose`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbox_messages DROP COLUMN consent_purpose`);
  }
}
