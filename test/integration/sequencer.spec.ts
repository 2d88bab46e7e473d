import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseVerifierKey, verifyCheckpoint } from '../../src/audit/domain/checkpoint.js';
import { checkConsistency, InMemoryMerkleLog, leafHash } from '../../src/audit/domain/merkle.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { consent, shareRequest } from '../support/fixtures.js';
import { ensureBuilt } from '../support/build.js';
import { REPO_ROOT, SHIPPED_POLICIES } from '../support/test-app.js';

/**
 * Two sluice processes on one PostgreSQL database, taking shares at the same time: the sequencer
 * (elected per batch by an advisory lock) must make one log of it.
 */
describe('two gateway processes on one PostgreSQL log', () => {
  const run = process.env.CI === 'true' || process.env.SLUICE_TEST_POSTGRES === 'available' ? it : it.skip;
  const servers: ChildProcess[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-data-'));
  const apiKey = `test-${randomBytes(16).toString('hex')}`;
  const signingKey = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  let database: TestDatabase | undefined;

  beforeAll(() => {
    ensureBuilt();
  }, 120_000);
  afterAll(async () => {
    for (const server of servers) {
      server.kill('SIGTERM');
      if (server.exitCode === null) await once(server, 'exit');
    }
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function start(url: string, masterKey: string): Promise<string> {
    const server = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'main.js')], {
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: url,
        DATA_DIR: dataDir,
        POLICIES_DIR: SHIPPED_POLICIES,
        SLUICE_BOOTSTRAP_KEY: apiKey,
        AUDIT_SIGNING_KEY: signingKey,
        SLUICE_MASTER_KEY: masterKey,
        DELIVERY_WORKER: 'on',
        LOG_LEVEL: 'log',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    servers.push(server);
    let output = '';
    server.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    server.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)\D/.exec(output);
      if (match) return match[1]!;
      if (server.exitCode !== null || Date.now() > deadline) throw new Error(`the gateway did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  run('sequences concurrent decisions of both into one consistent log', async () => {
    database = await createTestDatabase('postgres');
    const url = (database.config as { url: string }).url;
    const masterKey = randomBytes(32).toString('base64');
    const [a, b] = [await start(url, masterKey), await start(url, masterKey)];
    const call = async (base: string, path: string, body: unknown, headers: Record<string, string> = {}) => {
      const response = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}`, ...headers },
        body: JSON.stringify(body),
      });
      return { status: response.status, json: (await response.json()) as { id: string; audit: { entry: string; index: number } } };
    };
    expect((await call(a, '/v1/consents', consent('whatsapp', '31612345678'))).status).toBe(201);

    const shares = await Promise.all(
      Array.from({ length: 60 }, (_, i) => call(i % 2 === 0 ? a : b, '/v1/shares', shareRequest(), { 'idempotency-key': randomUUID() })),
    );
    expect(shares.every((s) => s.status === 201)).toBe(true);
    const answered = shares.map((s) => s.json.audit);
    expect(new Set(answered.map((x) => x.index)).size).toBe(60);

    // Wait for the delivery outcomes to be sequenced too: every message sent and nothing left in
    // the queue, read in one statement (one snapshot): read apart, a delivery committing between
    // the two reads would put its entries in the queue after it was seen empty.
    const deadline = Date.now() + 20_000;
    const unfinished = async () =>
      Number((await database!.adminQuery<{ n: string }>(`SELECT (SELECT count(*) FROM audit_queue) + (SELECT count(*) FROM outbox_messages WHERE state <> 'sent') AS n`))[0]!.n);
    while ((await unfinished()) > 0) {
      if (Date.now() > deadline) throw new Error('the queue did not drain');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    const entries = await database.adminQuery<{ idx: string; id: string; entry: string; leaf_hash: string }>(`SELECT idx, id, entry, leaf_hash FROM audit_entries ORDER BY idx`);
    expect(entries.map((e) => Number(e.idx))).toEqual(entries.map((_, i) => i));
    expect(new Set(entries.map((e) => e.id)).size).toBe(entries.length);
    const byId = new Map(entries.map((e) => [e.id, Number(e.idx)]));
    for (const { entry, index } of answered) expect(byId.get(entry)).toBe(index);
    expect(entries.filter((e) => JSON.parse(e.entry).kind === 'message.sent')).toHaveLength(60);
    for (const e of entries) expect(JSON.parse(e.entry).index).toBe(Number(e.idx));

    // Every checkpoint is signed, has the root of the log's first tree_size leaves, and is
    // consistent with the one before it.
    const log = new InMemoryMerkleLog();
    const roots: Uint8Array[] = [];
    for (const e of entries) {
      const leaf = leafHash(Buffer.from(e.entry, 'utf8'));
      expect(Buffer.from(leaf).toString('hex')).toBe(e.leaf_hash);
      log.append([leaf]);
      roots.push(log.root());
    }
    const publicKey = parseVerifierKey((await (await fetch(`${a}/v1/audit/public-key`, { headers: { authorization: `Bearer ${apiKey}` } })).text()).trim());
    const checkpoints = await database.adminQuery<{ tree_size: string; root_hash: string; note: string }>(`SELECT tree_size, root_hash, note FROM audit_checkpoints ORDER BY tree_size`);
    expect(checkpoints.length).toBeGreaterThan(1);
    expect(Number(checkpoints.at(-1)!.tree_size)).toBe(entries.length);
    let previous: { size: number; root: Uint8Array } | undefined;
    for (const checkpoint of checkpoints) {
      const size = Number(checkpoint.tree_size);
      const verified = verifyCheckpoint(checkpoint.note, publicKey);
      expect(verified).toMatchObject({ ok: true, checkpoint: { size } });
      expect(Buffer.from(roots[size - 1]!).toString('hex')).toBe(checkpoint.root_hash);
      if (previous) expect(checkConsistency(previous.size, size, log.consistencyProof(previous.size, size), previous.root, roots[size - 1]!)).toEqual({ ok: true });
      previous = { size, root: roots[size - 1]! };
    }
  });
});
