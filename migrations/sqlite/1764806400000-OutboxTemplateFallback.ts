import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The template request sent instead of a text where the recipient's 24-hour window is closed. */
export class OutboxTemplateFallbackSqlite1764806400000 implements MigrationInterface {
  name = 'OutboxTemplateFallbackSqlite1764806400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbox_messages ADD COLUMN fallback_payload text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbox_messages DROP COLUMN fallback_payload`);
  }
}
