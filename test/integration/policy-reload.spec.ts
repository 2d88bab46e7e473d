import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditSequencer } from '../../src/audit/audit-sequencer.js';
import { TransactionRunner } from '../../src/platform/database/transaction-runner.js';
import { PolicyActivationService } from '../../src/policy/policy-activation.service.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/databases.js';
import { consent, idempotencyKey, RECIPIENT, shareRequest } from '../support/fixtures.js';
import { ensureBuilt } from '../support/build.js';
import { REPO_ROOT, SHIPPED_POLICIES, type RunningApp, startTestApp } from '../support/test-app.js';
import { eventually } from '../support/eventually.js';

describeEachDatabase('policy hot reload', (dialect) => {
  let sluice: RunningApp;
  let dir: string;
  let policyFile: string;
  let original: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-policies-'));
    policyFile = join(dir, 'frontline-updates.policy.yaml');
    copyFileSync(join(SHIPPED_POLICIES, 'frontline-updates.policy.yaml'), policyFile);
    original = readFileSync(policyFile, 'utf8');
    sluice = await startTestApp(dialect, { env: { POLICIES_DIR: dir, POLICIES_WATCH: 'true' } });
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', RECIPIENT) });
  });
  afterAll(async () => {
    await sluice?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const activeBundle = async () => (await sluice.request('GET', '/ready', { key: null })).json.checks.bundle as string;
  const activations = async () =>
    (await sluice.database.adminQuery<{ entry: string }>(`SELECT entry FROM audit_entries WHERE kind = 'policy.activated' ORDER BY idx`)).map((r) => JSON.parse(r.entry));

  it('decides with a reloaded bundle only after recording it', async () => {
    const before = await activeBundle();
    writeFileSync(policyFile, original.replace('recipientsPerShare: 50', 'recipientsPerShare: 1'));
    const outcome = await sluice.app.get(PolicyActivationService).reload();
    expect(outcome).toMatchObject({ status: 'activated' });
    const after = await activeBundle();
    expect(after).not.toBe(before);
    const recorded = await activations();
    expect(recorded.at(-1)).toMatchObject({ kind: 'policy.activated', bundle: after });

    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [{ waId: RECIPIENT }, { waId: '31600000000' }] }), headers: idempotencyKey() });
    expect(share.json).toMatchObject({ status: 'denied', reasons: ['limits.too_many_recipients'], policy: { bundle: after } });
    expect(share.json.audit.index).toBeGreaterThan(recorded.at(-1).index);
  });

  it('refuses an invalid bundle on reload and keeps deciding with the last good one', async () => {
    const good = await activeBundle();
    const count = (await activations()).length;
    writeFileSync(policyFile, original.replace('lawfulBasis: consent', 'lawfulBasis: whim'));
    const outcome = await sluice.app.get(PolicyActivationService).reload();
    expect(outcome).toEqual({ status: 'refused', bundle: good, problems: 1 });
    expect(await activeBundle()).toBe(good);
    expect(await activations()).toHaveLength(count);
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: idempotencyKey() });
    expect(share.json.policy.bundle).toBe(good);
  });

  it('records the active bundle again when the log names another, after an activation that could not be waited for', async () => {
    writeFileSync(policyFile, original);
    await sluice.app.get(PolicyActivationService).reload();
    const active = await activeBundle();
    // The activation of a changed folder is recorded, but its wait for a log index fails: refused.
    const sequencer = sluice.app.get(AuditSequencer);
    const awaitIndices = jest.spyOn(sequencer, 'awaitIndices').mockRejectedValueOnce(Object.assign(new Error('not sequenced in time'), { name: 'AuditNotSequenced' }));
    try {
      writeFileSync(policyFile, original.replace('recipientsPerShare: 50', 'recipientsPerShare: 2'));
      expect(await sluice.app.get(PolicyActivationService).reload()).toMatchObject({ status: 'refused', bundle: active });
    } finally {
      awaitIndices.mockRestore();
    }
    await sequencer.sequenceNow();
    expect((await activations()).at(-1).bundle).not.toBe(active);
    // The folder back as it was: still deciding, but the log names the refused bundle last.
    writeFileSync(policyFile, original);
    expect(await sluice.app.get(PolicyActivationService).reload()).toEqual({ status: 'activated', bundle: active });
    expect((await activations()).at(-1)).toMatchObject({ kind: 'policy.activated', bundle: active });
    expect(await sluice.app.get(PolicyActivationService).reload()).toEqual({ status: 'unchanged', bundle: active });
  });

  it('refuses a reload whose database read fails, and the next one works: a failure never sticks or goes unhandled', async () => {
    writeFileSync(policyFile, original);
    const activation = sluice.app.get(PolicyActivationService);
    await activation.reload();
    const active = await activeBundle();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const read = jest.spyOn(sluice.app.get(TransactionRunner), 'read').mockRejectedValueOnce(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }));
    try {
      expect(await activation.reload()).toEqual({ status: 'refused', bundle: active, problems: 0 });
      expect(await activation.reload()).toEqual({ status: 'unchanged', bundle: active });
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      read.mockRestore();
      process.off('unhandledRejection', onUnhandled);
    }
    expect(await activeBundle()).toBe(active);
  });

  it('reloads when a file changes with POLICIES_WATCH=true', async () => {
    const before = await activeBundle();
    writeFileSync(policyFile, `${original}\n# reviewed in PR 42\n`);
    const after = await eventually(async () => {
      const bundle = await activeBundle();
      return bundle !== before ? bundle : undefined;
    }, 'the watched change');
    expect((await activations()).at(-1)).toMatchObject({ bundle: after });
  });

  it('honours a consent given while no policy named its purpose, once a reloaded policy does', async () => {
    const contact = '31600000077';
    const given = await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', contact, 'granted', 'shift-swaps') });
    expect(given.status).toBe(201);
    await sluice.app.get(AuditSequencer).sequenceNow();
    const [logged] = await sluice.database.adminQuery<{ entry: string }>(`SELECT entry FROM audit_entries WHERE id = ${dialect === 'postgres' ? '$1' : '?'}`, [given.json.audit.entry]);
    expect(JSON.parse(logged!.entry)).toMatchObject({ kind: 'consent.granted', purpose: '(unlisted)' });
    const share = () => sluice.request('POST', '/v1/shares', { body: shareRequest({ purpose: 'shift-swaps', recipients: [{ waId: contact }] }), headers: idempotencyKey() });
    expect((await share()).json.reasons).toEqual(['policy.none_matches']);

    const second = join(dir, 'shift-swaps.policy.yaml');
    writeFileSync(second, original.replaceAll('frontline-updates', 'shift-swaps'));
    try {
      // The watcher may have taken the new file first.
      expect(['activated', 'unchanged']).toContain((await sluice.app.get(PolicyActivationService).reload()).status);
      const allowed = await share();
      expect([allowed.json.status, allowed.json.policy.name, allowed.json.recipients]).toEqual(['accepted', 'shift-swaps', [{ waId: contact, decision: 'allowed', reasons: [] }]]);
      const consents = (await sluice.request('GET', `/v1/subjects/whatsapp/${contact}/consents`)).json;
      expect(consents.current).toEqual([expect.objectContaining({ purpose: 'shift-swaps', status: 'granted' })]);
      expect(consents.history.map((h: { purpose: string; status: string }) => [h.purpose, h.status])).toEqual([['shift-swaps', 'granted']]);
    } finally {
      rmSync(second);
      await sluice.app.get(PolicyActivationService).reload();
    }
  });
});

/**
 * A real signal needs a real process: jest gives each test file its own `process` object, which
 * never receives one. This starts the built server as an operator would and sends it SIGHUP.
 */
describeEachDatabase('SIGHUP to a running server', (dialect) => {
  let server: ChildProcess | undefined;
  let database: TestDatabase | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-policies-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-data-'));

  beforeAll(() => {
    ensureBuilt();
  }, 120_000);
  afterAll(async () => {
    server?.kill('SIGTERM');
    if (server && server.exitCode === null) await once(server, 'exit');
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('reloads the policies and records the new bundle', async () => {
    database = await createTestDatabase(dialect);
    const policy = join(dir, 'frontline-updates.policy.yaml');
    copyFileSync(join(SHIPPED_POLICIES, 'frontline-updates.policy.yaml'), policy);
    server = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'main.js')], {
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        POLICIES_DIR: dir,
        DATA_DIR: dataDir,
        DELIVERY_WORKER: 'off',
        LOG_LEVEL: 'log',
        ...(database.config.type === 'sqlite' ? { SQLITE_PATH: database.config.path, DATABASE_URL: '' } : { DATABASE_URL: database.config.url }),
        ...(dialect === 'postgres'
          ? { AUDIT_SIGNING_KEY: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), SLUICE_MASTER_KEY: randomBytes(32).toString('base64') }
          : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    server.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    server.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const baseUrl = await eventually(async () => /listening on (http:\/\/127\.0\.0\.1:\d+)\D/.exec(output)?.[1], 'the server to listen');
    const ready = async () => ((await (await fetch(`${baseUrl}/ready`)).json()) as { checks: { bundle: string } }).checks.bundle;
    const before = await ready();

    writeFileSync(policy, `${readFileSync(policy, 'utf8')}\n# approved in review\n`);
    server.kill('SIGHUP');
    const after = await eventually(async () => {
      const bundle = await ready();
      return bundle !== before ? bundle : undefined;
    }, 'the reloaded bundle');
    expect(output).toContain(`activated policy bundle ${after}`);
    const activations = await database.adminQuery<{ entry: string }>(`SELECT entry FROM audit_entries WHERE kind = 'policy.activated' ORDER BY idx`);
    expect(activations.map((r) => JSON.parse(r.entry).bundle)).toEqual([before, after]);
  });
});
