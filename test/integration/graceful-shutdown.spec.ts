import { afterEach, beforeAll, expect, it } from '@jest/globals';
import { type ChildProcess, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudApiSimulator } from '../simulator/cloud-api-simulator.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, shareRequest, workplacePost } from '../support/fixtures.js';
import { gatewayEnv, startGatewayProcess } from '../support/gateway-process.js';
import { REPO_ROOT } from '../support/test-app.js';
import { eventually } from '../support/eventually.js';

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
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'pipe' });
}, 120_000);

describeEachDatabase('graceful shutdown on SIGTERM', (dialect) => {
  let server: ChildProcess | undefined;
  let simulator: CloudApiSimulator | undefined;
  let database: TestDatabase | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-data-'));

  afterEach(async () => {
    if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    simulator?.release();
    await simulator?.close();
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /**
   * The built gateway with the delivery worker on, batches of two messages: after two shares to
   * four contacts, two batches are being sent (their answers held by the simulator) and four
   * messages wait in the outbox.
   */
  async function twoBatchesInFlight(env: Record<string, string> = {}): Promise<{ gateway: ChildProcess; baseUrl: string; headers: Record<string, string>; share: () => Record<string, unknown> }> {
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
    return { gateway: started.server, baseUrl, headers, share };
  }

  it('stops taking requests, finishes the decision in flight and the sends in flight, claims nothing more, and leaves no claim behind', async () => {
    const { gateway, baseUrl, headers, share } = await twoBatchesInFlight();
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
    // Nest raises the signal again once it has shut down, so the exit is by SIGTERM; that it got this
    // far is what the checks above (up after SIGTERM) show.
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });

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
    // Nest raises the signal again once it has shut down, so the exit is by SIGTERM; that it got this
    // far is what the checks above (up after SIGTERM) show.
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
    expect(await stuckOutcome).toBe('connection closed');
    const rows = await database!.adminQuery<OutboxRow>('SELECT share_id, state, claimed_by, claim_expires_at FROM outbox_messages');
    expect(rows.filter((r) => r.state === 'sent')).toHaveLength(4);
    expect(rows.filter((r) => r.state === 'pending' && r.claimed_by === null && r.claim_expires_at === null)).toHaveLength(4);
    expect(rows).toHaveLength(8);
    expect(simulator!.messages).toHaveLength(4);
  });
});
