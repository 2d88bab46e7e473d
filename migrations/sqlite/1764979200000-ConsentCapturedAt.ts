import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * When the change that set a consent's current state was captured (its evidence's capturedAt, or
 * the time it was recorded): a change captured earlier, recorded later (an old form imported after
 * an opt-out), no longer replaces it. States recorded before take the time they were recorded.
 */
export class ConsentCapturedAtSqlite1764979200000 implements MigrationInterface {
  name = 'ConsentCapturedAtSqlite1764979200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE consent_states ADD COLUMN captured_at varchar(30)`);
    await q.query(`UPDATE consent_states SET captured_at = updated_at`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE consent_states DROP COLUMN captured_at`);
  }
}
