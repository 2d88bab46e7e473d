import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Real WhatsApp delivery: what the worker needs to survive a crash without losing or needlessly
 * repeating a message (the attempt in flight, the retry time, WhatsApp's message id, the final
 * error), the 24-hour customer service window per contact, and the ids of inbound messages
 * already handled (webhooks are delivered at least once). The send rate is kept in memory: the
 * embedded database has one process.
 */
export class WhatsAppDeliverySqlite1764720000000 implements MigrationInterface {
  name = 'WhatsAppDeliverySqlite1764720000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbox_messages ADD COLUMN not_before varchar(30)`);
    await q.query(`ALTER TABLE outbox_messages ADD COLUMN attempt_started_at varchar(30)`);
    await q.query(`ALTER TABLE outbox_messages ADD COLUMN message_id varchar(128)`);
    await q.query(`ALTER TABLE outbox_messages ADD COLUMN error_code varchar(60)`);
    await q.query(`CREATE INDEX outbox_messages_message_id ON outbox_messages (message_id)`);
    await q.query(`CREATE INDEX outbox_messages_wa_id ON outbox_messages (wa_id, state)`);
    await q.query(`CREATE TABLE whatsapp_contacts (
      wa_id varchar(20) PRIMARY KEY,
      last_inbound_at varchar(30) NOT NULL)`);
    await q.query(`CREATE TABLE whatsapp_inbound_messages (
      id varchar(128) PRIMARY KEY,
      received_at varchar(30) NOT NULL)`);
    await q.query(`CREATE INDEX whatsapp_inbound_messages_received ON whatsapp_inbound_messages (received_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE whatsapp_inbound_messages`);
    await q.query(`DROP TABLE whatsapp_contacts`);
    await q.query(`DROP INDEX outbox_messages_wa_id`);
    await q.query(`DROP INDEX outbox_messages_message_id`);
    for (const column of ['error_code', 'message_id', 'attempt_started_at', 'not_before']) {
      await q.query(`ALTER TABLE outbox_messages DROP COLUMN ${column}`);
    }
  }
}
