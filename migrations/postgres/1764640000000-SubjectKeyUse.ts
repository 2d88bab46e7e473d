import type { MigrationInterface, QueryRunner } from 'typeorm';

/** When a subject key was last used: audit retention destroys keys unused for longer than it. */
export class SubjectKeyUsePostgres1764640000000 implements MigrationInterface {
  name = 'SubjectKeyUsePostgres1764640000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE subject_keys ADD COLUMN last_used_at varchar(30)`);
    await q.query(`UPDATE subject_keys SET last_used_at = created_at`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE subject_keys DROP COLUMN last_used_at`);
  }
}
