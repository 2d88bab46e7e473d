import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Tables whose rows are evidence: the database itself refuses to change, remove or truncate them. */
const APPEND_ONLY_TABLES = ['audit_entries', 'audit_subtrees', 'audit_checkpoints', 'consent_events'];

export class InitialSchemaPostgres1764028800000 implements MigrationInterface {
  name = 'InitialSchemaPostgres1764028800000';

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
      idx bigint PRIMARY KEY,
      id varchar(40) NOT NULL UNIQUE,
      kind varchar(40) NOT NULL,
      entry text NOT NULL,
      leaf_hash char(64) NOT NULL,
      created_at varchar(30) NOT NULL)`);
    await q.query(`CREATE INDEX audit_entries_kind ON audit_entries (kind, idx)`);
    await q.query(`CREATE TABLE audit_subtrees (
      level integer NOT NULL,
      idx bigint NOT NULL,
      hash char(64) NOT NULL,
      PRIMARY KEY (level, idx))`);
    await q.query(`CREATE TABLE audit_checkpoints (
      tree_size bigint PRIMARY KEY,
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
      audit_index bigint NOT NULL,
      activated_at varchar(30) NOT NULL)`);

    await q.query(`CREATE TABLE consent_events (
      id varchar(40) PRIMARY KEY,
      subject_type varchar(20) NOT NULL,
      subject_id varchar(100) NOT NULL,
      purpose varchar(100) NOT NULL,
      status varchar(20) NOT NULL,
      evidence text NOT NULL,
      audit_index bigint NOT NULL,
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
      audit_index bigint NOT NULL,
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
      decision_index bigint NOT NULL,
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

    await q.query(`CREATE FUNCTION sluice_reject_mutation() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
      END $$`);
    for (const table of APPEND_ONLY_TABLES) {
      // Row triggers catch UPDATE, DELETE and INSERT ... ON CONFLICT DO UPDATE; TRUNCATE skips row
      // triggers, so it needs a statement trigger of its own.
      await q.query(`CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table}
        FOR EACH ROW EXECUTE FUNCTION sluice_reject_mutation()`);
      await q.query(`CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table}
        FOR EACH STATEMENT EXECUTE FUNCTION sluice_reject_mutation()`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of [
      'sandbox_messages', 'outbox_messages', 'share_recipients', 'shares', 'consent_states', 'consent_events',
      'policy_activations', 'subject_keys', 'audit_checkpoints', 'audit_subtrees', 'audit_entries', 'api_keys',
    ]) {
      await q.query(`DROP TABLE IF EXISTS ${table}`);
    }
    await q.query(`DROP FUNCTION IF EXISTS sluice_reject_mutation()`);
  }
}
