import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Rows that named their audit entry by log index now name it by entry id (known before sequencing). */
const REFERENCES: [table: string, oldColumn: string, newColumn: string][] = [
  ['consent_events', 'audit_index', 'audit_entry'],
  ['shares', 'audit_index', 'audit_entry'],
  ['outbox_messages', 'decision_index', 'decision_entry'],
];

/**
 * The audit sequencer: writers queue entries in their own transaction; one sequencer at a time
 * (elected per batch by an advisory lock) gives them log indices in batches. Index references
 * become entry-id references, because a writer no longer knows the index when it commits.
 */
export class AuditSequencerPostgres1764633600000 implements MigrationInterface {
  name = 'AuditSequencerPostgres1764633600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE audit_queue (
      seq bigserial PRIMARY KEY,
      id varchar(40) NOT NULL UNIQUE,
      kind varchar(40) NOT NULL,
      body text NOT NULL,
      queued_at varchar(30) NOT NULL)`);
    // consent_events refuses updates: lift that for this one backfill of a reference column.
    await q.query(`ALTER TABLE consent_events DISABLE TRIGGER consent_events_append_only`);
    for (const [table, oldColumn, newColumn] of REFERENCES) {
      await q.query(`ALTER TABLE ${table} ADD COLUMN ${newColumn} varchar(40)`);
      await q.query(`UPDATE ${table} t SET ${newColumn} = a.id FROM audit_entries a WHERE a.idx = t.${oldColumn}`);
      await q.query(`ALTER TABLE ${table} ALTER COLUMN ${newColumn} SET NOT NULL`);
      await q.query(`ALTER TABLE ${table} DROP COLUMN ${oldColumn}`);
    }
    await q.query(`ALTER TABLE consent_events ENABLE TRIGGER consent_events_append_only`);
    // policy_activations already names its entry (entry_id).
    await q.query(`ALTER TABLE policy_activations DROP COLUMN audit_index`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE policy_activations ADD COLUMN audit_index bigint`);
    await q.query(`UPDATE policy_activations p SET audit_index = a.idx FROM audit_entries a WHERE a.id = p.entry_id`);
    await q.query(`ALTER TABLE consent_events DISABLE TRIGGER consent_events_append_only`);
    for (const [table, oldColumn, newColumn] of REFERENCES) {
      await q.query(`ALTER TABLE ${table} ADD COLUMN ${oldColumn} bigint`);
      await q.query(`UPDATE ${table} t SET ${oldColumn} = a.idx FROM audit_entries a WHERE a.id = t.${newColumn}`);
      await q.query(`ALTER TABLE ${table} DROP COLUMN ${newColumn}`);
    }
    await q.query(`ALTER TABLE consent_events ENABLE TRIGGER consent_events_append_only`);
    await q.query(`DROP TABLE audit_queue`);
  }
}
