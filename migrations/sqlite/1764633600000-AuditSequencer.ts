import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Rows that named their audit entry by log index now name it by entry id (known before sequencing). */
const REFERENCES: [table: string, oldColumn: string, newColumn: string][] = [
  ['consent_events', 'audit_index', 'audit_entry'],
  ['shares', 'audit_index', 'audit_entry'],
  ['outbox_messages', 'decision_index', 'decision_entry'],
];

/**
 * The audit sequencer: writers queue entries in their own transaction; one sequencer at a time
 * gives them log indices in batches. Index references become entry-id references, because a
 * writer no longer knows the index when it commits.
 */
export class AuditSequencerSqlite1764633600000 implements MigrationInterface {
  name = 'AuditSequencerSqlite1764633600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE audit_queue (
      seq integer PRIMARY KEY AUTOINCREMENT,
      id varchar(40) NOT NULL UNIQUE,
      kind varchar(40) NOT NULL,
      body text NOT NULL,
      queued_at varchar(30) NOT NULL)`);
    // consent_events refuses updates: lift that for this one backfill of a reference column.
    await q.query(`DROP TRIGGER consent_events_no_update`);
    for (const [table, oldColumn, newColumn] of REFERENCES) {
      await q.query(`ALTER TABLE ${table} ADD COLUMN ${newColumn} varchar(40)`);
      await q.query(`UPDATE ${table} SET ${newColumn} = (SELECT a.id FROM audit_entries a WHERE a.idx = ${table}.${oldColumn})`);
      await q.query(`ALTER TABLE ${table} DROP COLUMN ${oldColumn}`);
    }
    await q.query(`CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END`);
    // policy_activations already names its entry (entry_id).
    await q.query(`ALTER TABLE policy_activations DROP COLUMN audit_index`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE policy_activations ADD COLUMN audit_index integer`);
    await q.query(`UPDATE policy_activations SET audit_index = (SELECT a.idx FROM audit_entries a WHERE a.id = policy_activations.entry_id)`);
    await q.query(`DROP TRIGGER consent_events_no_update`);
    for (const [table, oldColumn, newColumn] of REFERENCES) {
      await q.query(`ALTER TABLE ${table} ADD COLUMN ${oldColumn} integer`);
      await q.query(`UPDATE ${table} SET ${oldColumn} = (SELECT a.idx FROM audit_entries a WHERE a.id = ${table}.${newColumn})`);
      await q.query(`ALTER TABLE ${table} DROP COLUMN ${newColumn}`);
    }
    await q.query(`CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END`);
    await q.query(`DROP TABLE audit_queue`);
  }
}
