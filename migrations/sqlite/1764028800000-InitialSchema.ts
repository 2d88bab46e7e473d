import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tables whose rows are evidence: the database itself refuses to change or remove them.
 * Each lists its unique keys (a key may span several columns).
 */
const APPEND_ONLY_TABLES: Record<string, string[][]> = {
  audit_entries: [['idx'], ['id']],
  audit_subtrees: [['level', 'idx']],
  audit_checkpoints: [['tree_size']],
  consent_events: [['id']],
};

export class InitialSchemaSqlite1764028800000 implements MigrationInterface {
  name = 'InitialSchemaSqlite1764028800000';

  async up(q: QueryRunner): Promise<void> {
    // Times are ISO-8601 UTC text written by the application: the same fixed-width format on both
    // dialects, so comparisons in SQL are plain string comparisons.
    await q.query(`CREATE TABLE api_keys (
      id varchar(40) PRIMARY KEY,
      name varchar(200) NOT NULL,
      key_hash char(64) NOT NULL UNIQUE,
      scopes varchar(500) NOT NULL,
      created_at varchar(30) NOT NULL)`);

    await q.query(`CREATE TABLE audit_entries (
      idx integer PRIMARY KEY,
      id varchar(40) NOT NULL UNIQUE,
      kind varchar(40) NOT NULL,
      entry text NOT NULL,
      leaf_hash char(64) NOT NULL,
      created_at varchar(30) NOT NULL)`);
    await q.query(`CREATE INDEX audit_entries_kind ON audit_entries (kind, idx)`);
    await q.query(`CREATE TABLE audit_subtrees (
      level integer NOT NULL,
      idx integer NOT NULL,
      hash char(64) NOT NULL,
      PRIMARY KEY (level, idx)) WITHOUT ROWID`);
    await q.query(`CREATE TABLE audit_checkpoints (
      tree_size integer PRIMARY KEY,
      root_hash char(64) NOT NULL,
      note text NOT NULL,
      created_at varchar(30) NOT NULL)`);
    await q.query(`CREATE TABLE subject_keys (
      lookup char(64) PRIMARY KEY,
      subject_type varchar(20) NOT NULL,
      wrapped_key text,
      created_at varchar(30) NOT NULL,
      destroyed_at varchar(30))`);

    await q.query(`CREATE TABLE policy_activations (
      entry_id varchar(40) PRIMARY KEY,
      bundle_hash varchar(80) NOT NULL,
      audit_index integer NOT NULL,
      activated_at varchar(30) NOT NULL)`);

    await q.query(`CREATE TABLE consent_events (
      id varchar(40) PRIMARY KEY,
      subject_type varchar(20) NOT NULL,
      subject_id varchar(100) NOT NULL,
      purpose varchar(100) NOT NULL,
      status varchar(20) NOT NULL,
      evidence text NOT NULL,
      audit_index integer NOT NULL,
      recorded_at varchar(30) NOT NULL)`);
    await q.query(`CREATE INDEX consent_events_subject ON consent_events (subject_type, subject_id, recorded_at)`);
    await q.query(`CREATE TABLE consent_states (
      subject_type varchar(20) NOT NULL,
      subject_id varchar(100) NOT NULL,
      purpose varchar(100) NOT NULL,
      status varchar(20) NOT NULL,
      event_id varchar(40) NOT NULL,
      updated_at varchar(30) NOT NULL,
      PRIMARY KEY (subject_type, subject_id, purpose))`);

    await q.query(`CREATE TABLE shares (
      id varchar(40) PRIMARY KEY,
      api_key_id varchar(40) NOT NULL,
      idempotency_key varchar(255) NOT NULL,
      request_hash char(64) NOT NULL,
      status varchar(30) NOT NULL,
      policy_name varchar(100),
      bundle_hash varchar(80) NOT NULL,
      document text NOT NULL,
      audit_index integer NOT NULL,
      created_at varchar(30) NOT NULL,
      UNIQUE (api_key_id, idempotency_key))`);
    await q.query(`CREATE TABLE share_recipients (
      share_id varchar(40) NOT NULL REFERENCES shares (id),
      wa_id varchar(20) NOT NULL,
      decision varchar(20) NOT NULL,
      reasons text NOT NULL,
      delivery_state varchar(20),
      delivery_updated_at varchar(30),
      PRIMARY KEY (share_id, wa_id))`);

    await q.query(`CREATE TABLE outbox_messages (
      id varchar(40) PRIMARY KEY,
      share_id varchar(40) NOT NULL REFERENCES shares (id),
      wa_id varchar(20) NOT NULL,
      purpose varchar(100) NOT NULL,
      payload text NOT NULL,
      decision_index integer NOT NULL,
      state varchar(20) NOT NULL,
      attempts integer NOT NULL DEFAULT 0,
      claimed_by varchar(60),
      claim_expires_at varchar(30),
      created_at varchar(30) NOT NULL,
      updated_at varchar(30) NOT NULL,
      UNIQUE (share_id, wa_id))`);
    await q.query(`CREATE INDEX outbox_messages_claimable ON outbox_messages (state, created_at)`);
    await q.query(`CREATE TABLE sandbox_messages (
      id varchar(80) PRIMARY KEY,
      wa_id varchar(20) NOT NULL,
      outbox_id varchar(40) NOT NULL,
      body text NOT NULL,
      media_id varchar(80),
      created_at varchar(30) NOT NULL)`);
    await q.query(`CREATE INDEX sandbox_messages_wa_id ON sandbox_messages (wa_id, created_at)`);

    for (const [table, uniqueKeys] of Object.entries(APPEND_ONLY_TABLES)) {
      const reject = `SELECT RAISE(ABORT, '${table} is append-only')`;
      await q.query(`CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table} BEGIN ${reject}; END`);
      await q.query(`CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table} BEGIN ${reject}; END`);
      // INSERT OR REPLACE deletes the conflicting row without firing delete triggers unless
      // recursive_triggers is on (a per-connection setting another client may not have): refuse
      // any insert that would collide with an existing row, whatever the connection's pragmas.
      const collision = uniqueKeys
        .map((columns) => `(${columns.map((c) => `${c} = NEW.${c}`).join(' AND ')})`)
        .join(' OR ');
      await q.query(
        `CREATE TRIGGER ${table}_no_replace BEFORE INSERT ON ${table} ` +
          `WHEN EXISTS (SELECT 1 FROM ${table} WHERE ${collision}) BEGIN ${reject}; END`,
      );
    }
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of [
      'sandbox_messages', 'outbox_messages', 'share_recipients', 'shares', 'consent_states', 'consent_events',
      'policy_activations', 'subject_keys', 'audit_checkpoints', 'audit_subtrees', 'audit_entries', 'api_keys',
    ]) {
      await q.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
}
