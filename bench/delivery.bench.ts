/**
 * Messages per second from the outbox to WhatsApp — the Cloud API simulator on loopback — with
 * the send rate lifted (WHATSAPP_SEND_RATE=100000), on SQLite and on PostgreSQL. Each message
 * goes the whole way: claim, consent re-check, 24-hour window check, attempt start, paced send
 * over HTTP, outcome and audit entry recorded. The baseline, measured in the same run, is the
 * simulator itself: the same requests sent straight to it by a bare client at the same
 * concurrency, without sluice. Run with `npm run bench:delivery` (PostgreSQL from
 * TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres; skipped if unreachable).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createApp } from '../src/app.js';
import { DeliveryWorker } from '../src/delivery/delivery-worker.js';
import { loadConfig } from '../src/platform/config/config.js';
import { CloudApiSimulator } from '../test/simulator/cloud-api-simulator.js';
import { machine, median } from './measure.js';
import { createPostgresDatabase, dropPostgresDatabase, POSTGRES_ADMIN_URL, postgresReachable } from './postgres.js';

const POLICIES = fileURLToPath(new URL('../../policies', import.meta.url));
const AUTHOR = '100041234567890';
/** The shipped policy allows 50 recipients per share. */
const RECIPIENTS_PER_SHARE = 50;
const CONTACTS = 500;
const MESSAGES_PER_ROUND = 5_000;
const ROUNDS = 3;
const BASELINE_CONCURRENCY = 200;

interface Result {
  name: string;
  perSecond: number;
}

const contacts = Array.from({ length: CONTACTS }, (_, i) => `3166${String(i).padStart(7, '0')}`);

/** The bare client (node:http, kept-alive connections): the requests sluice would send, straight to the simulator. */
async function baseline(simulator: CloudApiSimulator): Promise<number> {
  const url = new URL(`${simulator.baseUrl}/${simulator.apiVersion}/${simulator.phoneNumberId}/messages`);
  const agent = new Agent({ keepAlive: true, maxSockets: BASELINE_CONCURRENCY });
  const send = (body: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const request = httpRequest(url, { method: 'POST', agent, headers: { authorization: `Bearer ${simulator.accessToken}`, 'content-type': 'application/json', 'content-length': body.length } }, (response) => {
        if (response.statusCode !== 200) reject(new Error(`baseline request refused: ${response.statusCode}`));
        response.resume().on('end', resolve);
      });
      request.on('error', reject);
      request.end(body);
    });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: BASELINE_CONCURRENCY }, async () => {
      for (let i = next++; i < MESSAGES_PER_ROUND; i = next++) {
        const body = { messaging_product: 'whatsapp', recipient_type: 'individual', to: contacts[i % CONTACTS], type: 'text', text: { preview_url: false, body: 'Anna de Vries:\nShift starts at 7.' }, biz_opaque_callback_data: `out_bench${i}` };
        await send(Buffer.from(JSON.stringify(body)));
      }
    }),
  );
  const perSecond = MESSAGES_PER_ROUND / ((performance.now() - started) / 1000);
  agent.destroy();
  return perSecond;
}

async function throughSluice(simulator: CloudApiSimulator, dialect: 'sqlite' | 'postgres'): Promise<number[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const database = dialect === 'sqlite' ? { SQLITE_PATH: join(dataDir, 'sluice.db') } : { DATABASE_URL: await createPostgresDatabase() };
  const apiKey = `bench-${randomBytes(16).toString('hex')}`;
  const config = loadConfig({
    ...simulator.sluiceEnv(),
    ...database,
    WHATSAPP_SEND_RATE: '100000',
    SLUICE_BOOTSTRAP_KEY: apiKey,
    DATA_DIR: dataDir,
    POLICIES_DIR: POLICIES,
    DELIVERY_WORKER: 'off',
    LOG_LEVEL: 'error',
    AUDIT_SIGNING_KEY: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    SLUICE_MASTER_KEY: randomBytes(32).toString('base64'),
  });
  const app = await createApp(config, { logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
  simulator.webhookUrl = `${baseUrl}/v1/webhooks/whatsapp`;
  const post = async (path: string, body: unknown) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'idempotency-key': randomBytes(12).toString('hex') },
      body: JSON.stringify(body),
    });
    if (response.status !== 201) throw new Error(`${path} answered ${response.status}`);
    return response.json() as Promise<{ status?: string }>;
  };
  const consent = (type: string, id: string) => ({ subject: { type, id }, purpose: 'frontline-updates', status: 'granted', evidence: { method: 'form', text: 'notice v3' } });
  try {
    await post('/v1/consents', consent('workplace', AUTHOR));
    for (const waId of contacts) {
      await post('/v1/consents', consent('whatsapp', waId));
      await simulator.receiveText(waId, 'hi');
    }
    const worker = app.get(DeliveryWorker);
    const rates: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (let s = 0; s < MESSAGES_PER_ROUND / RECIPIENTS_PER_SHARE; s++) {
        const recipients = Array.from({ length: RECIPIENTS_PER_SHARE }, (_, r) => ({ waId: contacts[(s * RECIPIENTS_PER_SHARE + r) % CONTACTS]! }));
        const decided = await post('/v1/shares', {
          purpose: 'frontline-updates',
          sharedBy: { workplaceUserId: AUTHOR },
          post: { id: `1234567890_${round}${s}`, message: 'Shift starts at 7.', from: { id: AUTHOR, name: 'Anna de Vries' } },
          recipients,
        });
        if (decided.status !== 'accepted') throw new Error(`share not accepted: ${decided.status}`);
      }
      const sentBefore = simulator.messages.length;
      const started = performance.now();
      const handled = await worker.drain();
      const seconds = (performance.now() - started) / 1000;
      if (handled !== MESSAGES_PER_ROUND || simulator.messages.length - sentBefore !== MESSAGES_PER_ROUND) {
        throw new Error(`round ${round}: handled ${handled}, simulator received ${simulator.messages.length - sentBefore} of ${MESSAGES_PER_ROUND}`);
      }
      rates.push(MESSAGES_PER_ROUND / seconds);
    }
    return rates;
  } finally {
    await app.close();
    if (database.DATABASE_URL) await dropPostgresDatabase(database.DATABASE_URL);
    rmSync(dataDir, { recursive: true, force: true });
  }
}


async function main(): Promise<void> {
  const simulator = await CloudApiSimulator.start();
  try {
    for (const waId of contacts) await simulator.receiveText(waId, 'hi');
    const baselines: number[] = [];
    for (let round = 0; round < ROUNDS; round++) baselines.push(await baseline(simulator));
    const results: Result[] = [{ name: `simulator alone, bare client, ${BASELINE_CONCURRENCY} concurrent (baseline)`, perSecond: median(baselines) }];
    results.push({ name: 'outbox → simulator through sluice, SQLite', perSecond: median(await throughSluice(simulator, 'sqlite')) });
    const postgres = await postgresReachable();
    if (postgres) results.push({ name: 'outbox → simulator through sluice, PostgreSQL', perSecond: median(await throughSluice(simulator, 'postgres')) });

    console.log(`# delivery — ${new Date().toISOString().slice(0, 10)}, ${machine()}`);
    console.log(`${ROUNDS} rounds of ${MESSAGES_PER_ROUND.toLocaleString('en-US')} text messages each (median shown); ${CONTACTS} contacts, ${RECIPIENTS_PER_SHARE} per share; send rate lifted to 100,000/s\n`);
    console.log('| Measurement | messages per second | vs. baseline |');
    console.log('|---|---:|---:|');
    for (const row of results) console.log(`| ${row.name} | ${Math.round(row.perSecond).toLocaleString('en-US')} | ${(row.perSecond / results[0]!.perSecond).toFixed(3)}x |`);
    if (!postgres) console.log(`\nPostgreSQL at ${POSTGRES_ADMIN_URL} is not reachable: its row is missing.`);
    for (const row of results.slice(1)) {
      console.log(`\ntarget: >= 1,000 messages/s (${row.name.split(', ').at(-1)}): ${row.perSecond >= 1000 ? 'met' : 'NOT met'} (${Math.round(row.perSecond).toLocaleString('en-US')})`);
    }
  } finally {
    await simulator.close();
  }
}

await main();
