import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * WhatsApp's business-scoped user id (BSUID) of each contact whose phone number sluice has seen
 * with it. A contact with a username may write without their phone number; their STOP is then
 * known only by this id, and this is how sluice finds the number their consent is kept under.
 * `replaced`: WhatsApp replaced the user id (the contact changed number or user id); the row is
 * kept, with the number it stood for (NULL if sluice never knew it), so that a late webhook about
 * an older event does not bring the old pair back, and an erasure of the number still finds it.
 */
export class WhatsAppUserIdsSqlite1765152000000 implements MigrationInterface {
  name = 'WhatsAppUserIdsSqlite1765152000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE whatsapp_user_ids (
      user_id varchar(140) PRIMARY KEY,
      wa_id varchar(20),
      learned_at varchar(30) NOT NULL,
      replaced smallint NOT NULL DEFAULT 0)`);
    await q.query(`CREATE INDEX whatsapp_user_ids_wa_id ON whatsapp_user_ids (wa_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE whatsapp_user_ids`);
  }
}
