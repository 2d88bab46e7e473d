import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Minimised media waiting for delivery (not evidence: removed once delivered), and the sandbox
 * transport's copy of what it would have uploaded to the Cloud API.
 */
export class MediaObjectsSqlite1764547200000 implements MigrationInterface {
  name = 'MediaObjectsSqlite1764547200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE media_objects (
      id varchar(40) PRIMARY KEY,
      share_id varchar(40) NOT NULL,
      sha256 char(64) NOT NULL,
      mime_type varchar(40) NOT NULL,
      size integer NOT NULL,
      bytes text NOT NULL,
      created_at varchar(30) NOT NULL)`);
    await q.query(`CREATE INDEX media_objects_share ON media_objects (share_id)`);
    await q.query(`CREATE TABLE sandbox_media (
      id varchar(80) PRIMARY KEY,
      outbox_id varchar(40) NOT NULL UNIQUE,
      mime_type varchar(40) NOT NULL,
      bytes text NOT NULL,
      created_at varchar(30) NOT NULL)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE sandbox_media`);
    await q.query(`DROP TABLE media_objects`);
  }
}
