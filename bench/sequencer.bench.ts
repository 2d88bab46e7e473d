/**
 * Audit appends per second through the sequencer, on SQLite and on PostgreSQL: 32 concurrent
 * writers each queue an entry in their own transaction and wait for its log index (as a share
 * decision does). Baseline, same run and database: the same transactions inserting a plain row,
 * with no log behind them. Run with `npm run bench:audit`.
 */
import 'reflect-metadata';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp } from '../src/app.js';
import { AuditLogService } from '../src/audit/audit-log.service.js';
import { AuditSequencer } from '../src/audit/audit-sequencer.js';
import { loadConfig } from '../src/platform/config/config.js';
import { TransactionRunner } from '../src/platform/database/transaction-runner.js';
import { machine, type Measurement, table } from './measure.js';
import { createPostgresDatabase, dropPostgresDatabase } from './postgres.js';

const WRITERS = 32;
const DURATION_MS = 4000;

async function throughput(name: string, operation: () => Promise<unknown>): Promise<Measurement> {
  let done = 0;
  const deadline = performance.now() + DURATION_MS;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      while (performance.now() < deadline) {
        await operation();
        done++;
      }
    }),
  );
  const perSecond = done / ((performance.now() - start) / 1000);
  return { name, perSecond, microseconds: 1e6 / perSecond };
}

async function run(dialect: 'sqlite' | 'postgres'): Promise<Measurement[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const url = dialect === 'postgres' ? await createPostgresDatabase() : undefined;
  const config = loadConfig({
    DATA_DIR: dataDir,
    POLICIES_DIR: fileURLToPath(new URL('../../policies', import.meta.url)),
    DELIVERY_WORKER: 'off',
    LOG_LEVEL: 'error',
    AUDIT_SIGNING_KEY: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    SLUICE_MASTER_KEY: randomBytes(32).toString('base64'),
    ...(url ? { DATABASE_URL: url } : { SQLITE_PATH: join(dataDir, 'bench.db') }),
  });
  const app = await createApp(config, { logger: false });
  try {
    const transactions = app.get(TransactionRunner);
    const auditLog = app.get(AuditLogService);
    const sequencer = app.get(AuditSequencer);
    await transactions.dataSource.query('CREATE TABLE bench_rows (id varchar(40) PRIMARY KEY, body text NOT NULL)');
    const baseline = await throughput(`${dialect}: plain row per transaction (baseline)`, () =>
      transactions.run((m) => m.query(`INSERT INTO bench_rows (id, body) VALUES (${dialect === 'postgres' ? '$1, $2' : '?, ?'})`, [randomBytes(12).toString('hex'), '{"kind":"bench"}'])),
    );
    const appends = await throughput(`${dialect}: audit entry, queued and sequenced`, async () => {
      const [entry] = await transactions.run((m) => auditLog.append(m, [{ kind: 'message.sent', body: { share: 'shr_bench', outbox: randomBytes(9).toString('base64url') } }]));
      await sequencer.awaitIndices([entry!.id]);
    });
    const checkpoints = Number((await transactions.dataSource.query('SELECT count(*) AS n FROM audit_checkpoints'))[0].n);
    const entries = Number((await transactions.dataSource.query('SELECT count(*) AS n FROM audit_entries'))[0].n);
    console.log(`${dialect}: ${entries} entries in ${checkpoints} signed checkpoints (${(entries / checkpoints).toFixed(1)} entries per batch)`);
    return [baseline, appends];
  } finally {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (url) await dropPostgresDatabase(url);
  }
}

console.log(`# audit sequencer — ${new Date().toISOString().slice(0, 10)}, ${machine()}, ${WRITERS} concurrent writers, ${DURATION_MS / 1000} s each\n`);
for (const dialect of ['sqlite', 'postgres'] as const) {
  const [baseline, appends] = await run(dialect);
  console.log(`\n${table([baseline!, appends!], baseline!, 'per second (whole process)')}\n`);
}
