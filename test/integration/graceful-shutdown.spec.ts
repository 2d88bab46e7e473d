import { afterEach, beforeAll, expect, it } from '@jest/globals';
import { type ChildProcess, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import pg from 'pg';
import { join } from 'node:path';
import { CloudApiSimulator } from '../simulator/cloud-api-simulator.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, RECIPIENT, shareRequest, workplacePost } from '../support/fixtures.js';
import { startTlsCdn, type TlsCdn } from '../support/tls-cdn.js';
import { type GatewayProcess, gatewayEnv, spawnGatewayProcess, startGatewayProcess } from '../support/gateway-process.js';
import { REPO_ROOT } from '../support/test-app.js';
import { ensureBuilt } from '../support/build.js';
import { eventually } from '../support/eventually.js';
import { spansIn, startOtlpReceiver } from '../support/otlp-receiver.js';

interface OutboxRow {
  share_id: string;
  state: string;
  claimed_by: string | null;
  claim_expires_at: string | null;
}

/** A POST whose body is sent in two parts: the request is in flight on the server until the second. */
function splitRequest(url: string, headers: Record<string, string>, body: string): { finish(): void; response: Promise<{ status: number; json: Record<string, unknown> }> } {
  const req = request(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } });
  const response = new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
  });
  const half = Math.floor(body.length / 2);
  req.write(body.slice(0, half));
  return { finish: () => req.end(body.slice(half)), response };
}

/** Resolves once the server at `baseUrl` no longer takes new connections. */
function refusingConnections(baseUrl: string): Promise<true> {
  return eventually(
    () =>
      fetch(`${baseUrl}/health`).then(
        () => undefined,
        () => true as const,
      ),
    'new connections to be refused',
  );
}

/** SIGTERM needs a real process: the built server, started as an operator would. */
beforeAll(() => {
  ensureBuilt();
}, 120_000);

describeEachDatabase('graceful shutdown on SIGTERM', (dialect) => {
  let server: ChildProcess | undefined;
  let simulator: CloudApiSimulator | undefined;
  let database: TestDatabase | undefined;
  let cdn: TlsCdn | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-data-'));

  afterEach(async () => {
    if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    simulator?.release();
    await simulator?.close();
    cdn?.close();
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /**
   * The built gateway with the delivery worker on, batches of two messages: after two shares to
   * four contacts, two batches are being sent (their answers held by the simulator) and four
   * messages wait in the outbox.
   */
  async function twoBatchesInFlight(env: Record<string, string> = {}): Promise<{ gateway: ChildProcess; started: GatewayProcess; baseUrl: string; headers: Record<string, string>; share: () => Record<string, unknown> }> {
    simulator = await CloudApiSimulator.start();
    database = await createTestDatabase(dialect);
    const apiKey = `test-${randomBytes(24).toString('hex')}`;
    const started = await startGatewayProcess(
      gatewayEnv(database, dataDir, apiKey, {
        ...simulator.sluiceEnv(),
        DELIVERY_WORKER: 'on',
        DELIVERY_POLL_MS: '50',
        WHATSAPP_SEND_RATE: '2',
        WHATSAPP_TIMEOUT_MS: '30000',
        DELIVERY_LEASE_MS: '120000',
        ...env,
      }),
    );
    server = started.server;
    const { baseUrl } = started;
    simulator.webhookUrl = `${baseUrl}/v1/webhooks/whatsapp`;
    const headers = { authorization: `Bearer ${apiKey}` };
    const call = async (path: string, body: unknown) => {
      const response = await fetch(`${baseUrl}${path}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'idempotency-key': randomBytes(8).toString('hex') },
        body: JSON.stringify(body),
      });
      expect(response.status).toBeLessThan(300);
    };
    const contacts = Array.from({ length: 4 }, (_, i) => `3165100000${i}`);
    await call('/v1/consents', consent('workplace', AUTHOR_ID));
    for (const waId of contacts) {
      await call('/v1/consents', consent('whatsapp', waId));
      await simulator.receiveText(waId, 'hi');
    }
    simulator.hold();
    const share = () => shareRequest({ post: workplacePost({ message: 'Shift starts at 7.', message_tags: [] }), recipients: contacts.map((waId) => ({ waId })) });
    await call('/v1/shares', share());
    await call('/v1/shares', share());
    await eventually(async () => (simulator!.held === 4 ? true : undefined), 'two batches in flight');
    return { gateway: started.server, started, baseUrl, headers, share };
  }

  it('stops taking requests, finishes the decision in flight and the sends in flight, claims nothing more, and leaves no claim behind', async () => {
    const { gateway, started, baseUrl, headers, share } = await twoBatchesInFlight();
    const outbox = () => database!.adminQuery<OutboxRow>('SELECT share_id, state, claimed_by, claim_expires_at FROM outbox_messages');
    const inFlight = splitRequest(`${baseUrl}/v1/shares`, { ...headers, 'idempotency-key': 'in-flight-at-sigterm' }, JSON.stringify(share()));
    await new Promise((resolve) => setTimeout(resolve, 200));

    gateway.kill('SIGTERM');
    // New connections are refused at once; the process stays up for what is in flight.
    await refusingConnections(baseUrl);
    expect(gateway.exitCode).toBeNull();
    expect(gateway.signalCode).toBeNull();

    // The decision whose body was still arriving is made, recorded and answered.
    inFlight.finish();
    const decided = await inFlight.response;
    expect(decided.status).toBe(201);
    expect(decided.json.status).toBe('accepted');
    expect((decided.json.audit as { index: number }).index).toEqual(expect.any(Number));

    // The sends in flight end and are recorded; then the process exits on its own.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(gateway.exitCode).toBeNull();
    expect(gateway.signalCode).toBeNull();
    simulator!.release();
    const [code, signal] = (await once(gateway, 'exit')) as [number | null, NodeJS.Signals | null];
    // The process raises the signal again once it has shut down, so the exit is by SIGTERM; that it got this
    // far is what the checks above (up after SIGTERM) show.
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
    // No error on the way out: nothing ran into the closed database or a stopped exporter.
    expect(started.errors()).toBe('');

    const rows = await outbox();
    expect(rows.filter((r) => r.state === 'claimed' || r.claimed_by !== null || r.claim_expires_at !== null)).toEqual([]);
    expect(rows.filter((r) => r.state === 'sent')).toHaveLength(4);
    // Nothing was claimed after SIGTERM: the rest waits for the next start (or another replica).
    expect(rows.filter((r) => r.state === 'pending')).toHaveLength(8);
    expect(simulator!.messages).toHaveLength(4);
    // Every entry, the last decision's and the last sends' included, has its index in the log.
    const [{ queued }] = await database!.adminQuery<{ queued: number | string }>('SELECT COUNT(*) AS queued FROM audit_queue');
    expect(Number(queued)).toBe(0);
    const sent = await database!.adminQuery<{ count: number | string }>(`SELECT COUNT(*) AS count FROM audit_entries WHERE kind = 'message.sent'`);
    expect(Number(sent[0]!.count)).toBe(4);
  });

  it('exports the telemetry of what ran during shutdown: the spans of a decision made after SIGTERM reach the collector before the process exits', async () => {
    const receiver = await startOtlpReceiver();
    try {
      database = await createTestDatabase(dialect);
      const apiKey = `test-${randomBytes(24).toString('hex')}`;
      // Spans are batched for a minute: only the flush at shutdown sends them.
      const started = await startGatewayProcess(
        gatewayEnv(database, dataDir, apiKey, { DELIVERY_WORKER: 'off', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '60000', OTEL_METRICS_EXPORTER: 'none' }),
      );
      server = started.server;
      const headers = { authorization: `Bearer ${apiKey}` };
      for (const body of [consent('workplace', AUTHOR_ID), consent('whatsapp', RECIPIENT)]) {
        const granted = await fetch(`${started.baseUrl}/v1/consents`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        expect(granted.status).toBe(201);
      }
      const traceId = randomBytes(16).toString('hex');
      const traceparent = `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
      const inFlight = splitRequest(`${started.baseUrl}/v1/shares`, { ...headers, traceparent, 'idempotency-key': 'traced-past-sigterm' }, JSON.stringify(shareRequest()));
      await new Promise((resolve) => setTimeout(resolve, 200));

      started.server.kill('SIGTERM');
      await refusingConnections(started.baseUrl);
      inFlight.finish();
      expect((await inFlight.response).status).toBe(201);
      const [code, signal] = (await once(started.server, 'exit')) as [number | null, NodeJS.Signals | null];
      expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
      expect(started.errors()).toBe('');

      // The request ended after SIGTERM: its spans were still taken and exported, so the exporter
      // was shut down after the application, not before.
      const names = spansIn(receiver.received)
        .filter((span) => span.traceId === traceId)
        .map((span) => span.name);
      expect(names).toEqual(expect.arrayContaining(['POST /v1/shares', 'sluice.share.request', 'sluice.policy.evaluate']));
    } finally {
      receiver.server.closeAllConnections();
      receiver.server.close();
    }
  });

  it('claims nothing once signalled, even while a request holds the server open, and closes a connection that never finishes its request after SHUTDOWN_GRACE_MS', async () => {
    const { gateway, baseUrl, headers, share } = await twoBatchesInFlight({ SHUTDOWN_GRACE_MS: '5000' });
    // Half a body that never gets its second half.
    const stuck = splitRequest(`${baseUrl}/v1/shares`, { ...headers, 'idempotency-key': 'never-finished' }, JSON.stringify(share()));
    const stuckOutcome = stuck.response.then(
      () => 'answered',
      () => 'connection closed',
    );
    await new Promise((resolve) => setTimeout(resolve, 200));

    gateway.kill('SIGTERM');
    const exited = once(gateway, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    await refusingConnections(baseUrl);
    // The sends in flight end while the open request keeps the server up; the worker, polling
    // every 50 ms, has time to claim the four waiting messages if it still would.
    simulator!.release();
    await eventually(async () => ((await database!.adminQuery<OutboxRow>(`SELECT share_id, state, claimed_by, claim_expires_at FROM outbox_messages WHERE state = 'sent'`)).length === 4 ? true : undefined), 'the sends in flight to be recorded');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(gateway.exitCode).toBeNull();
    expect(gateway.signalCode).toBeNull();

    // The grace period ends: the connection is closed and shutdown goes on.
    const [code, signal] = await exited;
    // The process raises the signal again once it has shut down, so the exit is by SIGTERM; that it got this
    // far is what the checks above (up after SIGTERM) show.
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
    expect(await stuckOutcome).toBe('connection closed');
    const rows = await database!.adminQuery<OutboxRow>('SELECT share_id, state, claimed_by, claim_expires_at FROM outbox_messages');
    expect(rows.filter((r) => r.state === 'sent')).toHaveLength(4);
    expect(rows.filter((r) => r.state === 'pending' && r.claimed_by === null && r.claim_expires_at === null)).toHaveLength(4);
    expect(rows).toHaveLength(8);
    expect(simulator!.messages).toHaveLength(4);
  });

  it('exits with status 1, naming what it still waits for, when shutdown takes longer than SHUTDOWN_TIMEOUT_MS', async () => {
    // The sends in flight are never answered (until WHATSAPP_TIMEOUT_MS, 30 s): shutdown hangs on them.
    const { gateway, started } = await twoBatchesInFlight({ SHUTDOWN_GRACE_MS: '1000', SHUTDOWN_TIMEOUT_MS: '2000' });
    const exited = once(gateway, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    gateway.kill('SIGTERM');
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: 1, signal: null });
    expect(started.output()).toMatch(/shutdown did not finish within SHUTDOWN_TIMEOUT_MS \(2000 ms\): exiting; still pending: [^\n]*delivery worker: sends in flight/);
  });

  it('exits at once with status 1 on a second signal during shutdown', async () => {
    const { gateway, started } = await twoBatchesInFlight();
    const exited = once(gateway, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    gateway.kill('SIGTERM');
    await eventually(() => (started.output().includes('SIGTERM received: shutting down') ? true : undefined), 'shutdown to begin');
    // Ctrl-C again: the held sends (30 s) and the 25 s default deadline are not waited for.
    gateway.kill('SIGINT');
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: 1, signal: null });
    expect(started.output()).toMatch(/SIGINT during shutdown: exiting at once; still pending: [^\n]*delivery worker: sends in flight/);
  });

  // PostgreSQL only: SQLite waits for a lock synchronously (busy_timeout), the event loop with it.
  (dialect === 'postgres' ? it : it.skip)('lets start-up finish when signalled during it, then shuts down as usual', async () => {
    database = await createTestDatabase(dialect);
    const apiKey = `test-${randomBytes(24).toString('hex')}`;
    const env = gatewayEnv(database, dataDir, apiKey, { DELIVERY_WORKER: 'off' });
    execFileSync(process.execPath, [join(REPO_ROOT, 'bin', 'sluice.js'), 'db', 'migrate'], { env, stdio: 'pipe' });
    // Start-up stops at the bootstrap key (after the application's hooks are in place, before it
    // listens) for as long as the test holds the key table.
    const holder = new pg.Client({ connectionString: (database.config as { url: string }).url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE');
    const starting = spawnGatewayProcess(env);
    server = starting.server;
    const exited = once(starting.server, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    await eventually(() => (starting.output().includes('Nest application successfully started') ? true : undefined), 'the application to be initialised');
    starting.server.kill('SIGTERM');
    await eventually(() => (starting.output().includes('SIGTERM received during start-up: shutting down once start-up has finished') ? true : undefined), 'the signal to be noted');
    await holder.query('ROLLBACK');
    await holder.end();

    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
    expect(starting.output()).toMatch(/listening on http/);
    expect(starting.errors()).toBe('');
    expect(await database.adminQuery('SELECT id FROM api_keys')).toHaveLength(1);
  });

  // PostgreSQL only: SQLite waits for a lock synchronously (busy_timeout), the event loop with it.
  (dialect === 'postgres' ? it : it.skip)('ignores a SIGHUP late in shutdown, after the policies stopped listening for it', async () => {
    database = await createTestDatabase(dialect);
    const apiKey = `test-${randomBytes(24).toString('hex')}`;
    const started = await startGatewayProcess(gatewayEnv(database, dataDir, apiKey, { DELIVERY_WORKER: 'off' }));
    server = started.server;
    const exited = once(started.server, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    // The sequencer's last pass (after the policies' shutdown hook) waits while the test holds its queue.
    const holder = new pg.Client({ connectionString: (database.config as { url: string }).url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE audit_queue IN ACCESS EXCLUSIVE MODE');
    started.server.kill('SIGTERM');
    await eventually(() => (started.output().includes('shutdown step: audit sequencer: last sequencing pass') ? true : undefined), 'the last sequencing pass');
    started.server.kill('SIGHUP');
    await holder.query('ROLLBACK');
    await holder.end();
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
    expect(started.errors()).toBe('');
  });

  it('waits for a handler still running when SHUTDOWN_GRACE_MS closes its connection, and records its decision before the database closes', async () => {
    const photoRequests: ServerResponse[] = [];
    // The photo's answer is held: the share's handler waits for it past the grace period.
    cdn = await startTlsCdn((_request, response) => void photoRequests.push(response));
    const { gateway, started, baseUrl, headers, share } = await twoBatchesInFlight({
      SHUTDOWN_GRACE_MS: '1000',
      MEDIA_FETCH_HOSTS: `localhost:${cdn.port}`,
      MEDIA_FETCH_ALLOW_PRIVATE: 'true',
      MEDIA_FETCH_CA_FILE: cdn.caFile,
    });
    const exited = once(gateway, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const withPhoto = { ...share(), post: workplacePost({ message: 'Shift starts at 7.', message_tags: [], attachments: { data: [{ type: 'photo', media: { image: { src: `${cdn.base}/photo.jpg` } } }] } }) };
    const answer = fetch(`${baseUrl}/v1/shares`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', 'idempotency-key': 'handled-past-grace' },
      body: JSON.stringify(withPhoto),
    }).then(
      () => 'answered',
      () => 'connection closed',
    );
    await eventually(() => (photoRequests.length === 1 ? true : undefined), 'the photo to be requested');

    gateway.kill('SIGTERM');
    expect(await answer).toBe('connection closed');
    await eventually(() => {
      const output = started.output();
      if (output.includes('shutdown step: delivery worker')) throw new Error('shutdown went on to the worker and the database with a handler still running');
      return output.includes('request(s) still being handled after their connections closed') ? true : undefined;
    }, 'shutdown to wait for the handler');
    simulator!.release();
    photoRequests[0]!.writeHead(200, { 'content-type': 'image/jpeg' }).end('not a photo');

    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
    expect(started.errors()).toBe('');
    // Its decision (a denial: the photo is not one) is recorded, and its audit entry has its index.
    const [{ shares }] = await database!.adminQuery<{ shares: number | string }>('SELECT COUNT(*) AS shares FROM shares');
    expect(Number(shares)).toBe(3);
    const [{ queued }] = await database!.adminQuery<{ queued: number | string }>('SELECT COUNT(*) AS queued FROM audit_queue');
    expect(Number(queued)).toBe(0);
  });
});
