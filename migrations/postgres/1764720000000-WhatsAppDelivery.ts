import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Real WhatsApp delivery: what the worker needs to survive a crash without losing or needlessly
 * repeating a message (the attempt in flight, the retry time, WhatsApp's message id, the final
 * error), the 24-hour customer service window per contact, the ids of inbound messages already
 * handled (webhooks are delivered at least once), and the send-rate schedule that replicas share
 * per phone number.
 */
export class WhatsAppDeliveryPostgres1764720000000 implements MigrationInterface {
  name = 'WhatsAppDeliveryPostgres1764720000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbox_messages
      ADD COLUMN not_before varchar(30),
      ADD COLUMN attempt_started_at varchar(30),
      ADD COLUMN message_id varchar(128),
      ADD COLUMN error_code varchar(60)`);
    await q.query(`CREATE INDEX outbox_messages_message_id ON outbox_messages (message_id)`);
    await q.query(`CREATE INDEX outbox_messages_wa_id ON outbox_messages (wa_id, state)`);
    await q.query(`CREATE TABLE whatsapp_contacts (
      wa_id varchar(20) PRIMARY KEY,
      last_inbound_at varchar(30) NOT NULL)`);
    await q.query(`CREATE TABLE whatsapp_inbound_messages (
      id varchar(128) PRIMARY KEY,
      received_at varchar(30) NOT NULL)`);
    await q.query(`CREATE INDEX whatsapp_inbound_messages_received ON whatsapp_inbound_messages (received_at)`);
    // Microseconds since the epoch on the database's clock: the one clock all replicas share.
    await q.query(`CREATE TABLE whatsapp_send_slots (
      phone_number_id varchar(40) PRIMARY KEY,
      next_slot_us bigint NOT NULL)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE whatsapp_send_slots`);
    await q.query(`DROP TABLE whatsapp_inbound_messages`);
    await q.query(`DROP TABLE whatsapp_contacts`);
    await q.query(`DROP INDEX outbox_messages_wa_id`);
    await q.query(`DROP INDEX outbox_messages_message_id`);
    await q.query(`ALTER TABLE outbox_messages DROP COLUMN error_code, DROP COLUMN message_id, DROP COLUMN attempt_started_at, DROP COLUMN not_before`);
  }
}
