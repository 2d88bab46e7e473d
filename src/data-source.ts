import { existsSync } from 'node:fs';
import { DataSource } from 'typeorm';
import { POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS } from '../migrations/index.js';
import { AuditCheckpointEntity, AuditEntryEntity, AuditQueueEntity, AuditSubtreeEntity, SubjectKeyEntity } from './audit/infrastructure/audit.entities.js';
import { ConsentEventEntity, ConsentStateEntity } from './consent/infrastructure/consent.entities.js';
import { MediaObjectEntity, OutboxMessageEntity, SandboxMediaEntity, SandboxMessageEntity } from './delivery/infrastructure/delivery.entities.js';
import type { DatabaseConfig } from './platform/config/config.js';
import { ApiKeyEntity } from './platform/auth/api-key.entity.js';
import { PolicyActivationEntity } from './policy/infrastructure/policy-activation.entity.js';
import { ShareEntity, ShareRecipientEntity } from './shares/infrastructure/share.entities.js';

export const ENTITIES = [
  ApiKeyEntity,
  AuditEntryEntity,
  AuditSubtreeEntity,
  AuditCheckpointEntity,
  AuditQueueEntity,
  SubjectKeyEntity,
  PolicyActivationEntity,
  ConsentEventEntity,
  ConsentStateEntity,
  ShareEntity,
  ShareRecipientEntity,
  OutboxMessageEntity,
  SandboxMessageEntity,
  MediaObjectEntity,
  SandboxMediaEntity,
];

/**
 * The one data source definition, shared by the server and the CLI. Schema changes only ever
 * come from migrations (never `synchronize`).
 */
export function createDataSource(database: DatabaseConfig): DataSource {
  if (database.type === 'postgres') {
    return new DataSource({
      type: 'postgres',
      url: database.url,
      entities: ENTITIES,
      migrations: POSTGRES_MIGRATIONS,
      migrationsTableName: 'schema_migrations',
      synchronize: false,
      // Pipelined connections: statements a transaction sends without waiting for each other's
      // answers go out together (see Sql), so a group commit waits for fewer round trips.
      // A connection attempt that gets no answer (a database host gone) fails after
      // connectTimeoutMs instead of never: start-up, requests and shutdown would otherwise wait on
      // it for good. pg-pool bounds a wait for a free pooled connection by the same time; such a
      // request is answered 503 (see database-unavailable.ts).
      extra: { max: database.poolSize, pipeline: true, connectionTimeoutMillis: database.connectTimeoutMs },
    });
  }
  return new DataSource({
    type: 'better-sqlite3',
    database: database.path,
    entities: ENTITIES,
    migrations: SQLITE_MIGRATIONS,
    migrationsTableName: 'schema_migrations',
    synchronize: false,
    enableWAL: true,
    prepareDatabase: (db: { pragma(sql: string): unknown }) => {
      // FULL makes each commit durable before it returns (a decision is in the log before the
      // response); recursive_triggers makes REPLACE fire the append-only delete triggers too.
      // Statement and savepoint journals (only ever needed to undo part of a transaction) stay in
      // memory: as files they cost a group commit hundreds of write calls.
      db.pragma('synchronous = FULL');
      db.pragma('recursive_triggers = ON');
      db.pragma('busy_timeout = 5000');
      db.pragma('temp_store = MEMORY');
    },
  });
}

/**
 * A second, read-only connection to the SQLite file: in WAL mode it reads the last committed
 * state while the one writer connection is inside a transaction (see TransactionRunner.read).
 */
export function createSqliteReader(path: string): DataSource {
  return new DataSource({
    type: 'better-sqlite3',
    database: path,
    entities: ENTITIES,
    readonly: true,
    fileMustExist: true,
    synchronize: false,
    prepareDatabase: (db: { pragma(sql: string): unknown }) => {
      db.pragma('busy_timeout = 5000');
    },
  });
}

/**
 * The database for a command that only reads what the server wrote (an export, a report):
 * connected, or why not. A missing SQLite file is not created, and a schema with migrations
 * pending is refused, each with what to do instead of a query failing halfway.
 */
export async function openExistingDatabase(database: DatabaseConfig): Promise<{ dataSource: DataSource } | { problem: string }> {
  if (database.type === 'sqlite' && !existsSync(database.path)) {
    return { problem: `no database at ${database.path}: set SQLITE_PATH or DATABASE_URL to the server's, or create one with npx sluice db migrate` };
  }
  const dataSource = createDataSource(database);
  try {
    await dataSource.initialize();
  } catch (error) {
    return { problem: `cannot connect to the database: ${(error as Error).message}` };
  }
  try {
    // Whether the migrations table is there at all first: TypeORM's check would create it.
    const table = database.type === 'sqlite' ? `SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'` : `SELECT to_regclass('schema_migrations') AS name`;
    const [found] = (await dataSource.query(table)) as { name: string | null }[];
    if (!found?.name || (await dataSource.showMigrations())) {
      await dataSource.destroy();
      return { problem: 'the database has migrations pending: run npx sluice db migrate (or start the server) first' };
    }
  } catch (error) {
    await dataSource.destroy();
    return { problem: `cannot read the database's schema: ${(error as Error).message}` };
  }
  return { dataSource };
}
