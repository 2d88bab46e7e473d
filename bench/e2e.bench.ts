/**
 * Shares per second and latency of `POST /v1/shares` end to end — HTTP, auth, validation, policy,
 * consent, audit entry sequenced into the signed log before the answer — at 50 concurrent
 * connections, on SQLite and on PostgreSQL, each as a ratio against a bare NestJS-on-Fastify
 * endpoint that takes the same request and answers with as many bytes, measured in the same run.
 * Every server runs in its own child process, started as production starts it
 * (`node dist/src/main.js` with the flags of `npm start`), so autocannon does not share its event loop. Run with
 * `npm run bench:e2e`.
 *
 * The delivery worker is off by default (E2E_DELIVERY_WORKER=on runs it): with the sandbox
 * transport every delivered message is one more database transaction, the sandbox's own record
 * of it, which production's Cloud API client replaces with an HTTP request to WhatsApp; so a
 * worker draining the outbox under this load measures the sandbox as much as the share path.
 * Delivery has its own benchmark (bench:delivery).
 *
 * Each gateway then replays the probe's share for as long (a reference row): the request without
 * its decision and writes, answered from its idempotency record.
 *
 * E2E_ROUNDS (3), E2E_DURATION (10 s, after a 3 s warm-up), E2E_ONLY (e.g. `sqlite`: measure
 * only those, no ratios; `sqlite,bare` for one ratio; at least one gateway), E2E_CPU_PROF (a folder: each gateway child writes a V8 CPU profile
 * there), E2E_NODE_ARGS (flags for the gateway's node, e.g. `--max-semi-space-size=64`) and
 * E2E_PG_RTT_MS (a round-trip time between the gateway and PostgreSQL, made by a proxy that holds
 * every chunk for half of it each way: PostgreSQL a network hop away, as in production) tune a run;
 * SHARE_COMMITS_IN_FLIGHT is handed to the PostgreSQL gateway.
 */
import autocannon, { type Result } from 'autocannon';
import Database from 'better-sqlite3';
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { machine, median } from './measure.js';
import { createPostgresDatabase, dropPostgresDatabase, POSTGRES_ADMIN_URL, postgresReachable } from './postgres.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The node flags `npm start` gives the gateway (package.json's start script), so that it runs here as it does there. */
const START_FLAGS = startFlags((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start);

function startFlags(script: string): string[] {
  const words = script.split(/\s+/);
  if (words[0] !== 'node' || words.at(-1) !== 'dist/src/main.js') throw new Error(`the start script is not "node [flags] dist/src/main.js": ${script}`);
  return words.slice(1, -1);
}
const CONNECTIONS = 50;
const ROUNDS = Number(process.env.E2E_ROUNDS ?? 3);
const DURATION_S = Number(process.env.E2E_DURATION ?? 10);
const WARMUP_S = 3;
const DELIVERY_WORKER = process.env.E2E_DELIVERY_WORKER ?? 'off';
const CPU_PROFILES = process.env.E2E_CPU_PROF;
const ONLY = process.env.E2E_ONLY?.split(',');
const PG_RTT_MS = Number(process.env.E2E_PG_RTT_MS ?? 0);
const TARGETS = { sqlite: 0.3, postgres: 0.2, p99Ms: 25 };

const AUTHOR = '100041234567890';
const RECIPIENT = '31612345678';
/** A text post with one recipient, as a Workplace integration would send it. */
const SHARE = JSON.stringify({
  purpose: 'frontline-updates',
  sharedBy: { workplaceUserId: AUTHOR },
  post: {
    id: '1234567890_987654321',
    message: 'The new warehouse opens on Monday at 7. Safety shoes are at the front desk; ask for the key card there.',
    from: { id: AUTHOR, name: 'Anna de Vries' },
    created_time: '2026-11-20T09:12:44+0000',
    permalink_url: 'https://acme.workplace.com/groups/1/permalink/987654321/',
  },
  recipients: [{ waId: RECIPIENT }],
});

type Target = 'bare' | 'sqlite' | 'postgres';
/** A gateway answering the probe's share again from its idempotency record: the request without its decision and writes. */
type Replay = `${'sqlite' | 'postgres'} replay`;

interface Run {
  target: Target | Replay;
  perSecond: number;
  p50: number;
  p99: number;
  answered: number;
  failed: number;
  /** CPU time the server process used per answered request: what a busy, shared machine distorts least. */
  cpuMsEach: number | undefined;
  note: string;
}

interface Server {
  url: string;
  apiKey: string;
  child: ChildProcess;
  /** How many log entries and signed checkpoints the gateway's database holds. */
  log?(): Promise<{ entries: number; checkpoints: number }>;
  stop(): Promise<void>;
}

/** User + system CPU seconds of a process so far (Linux /proc), or undefined elsewhere. */
function cpuSeconds(child: ChildProcess): number | undefined {
  try {
    const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** Starts `script` as a child on a free port and waits until `ready` answers. */
async function startChild(script: string, args: string[], env: Record<string, string>, ready: (url: string) => Promise<boolean>): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [...args, script], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode}:\n${stderr}`);
    if (await ready(url).catch(() => false)) break;
    if (Date.now() > deadline) throw new Error(`${script} did not start:\n${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  if (stderr) process.stderr.write(stderr);
  return { url, child };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

async function startGateway(dialect: 'sqlite' | 'postgres'): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-e2e-'));
  const databaseUrl = dialect === 'postgres' ? await createPostgresDatabase() : undefined;
  const proxy = databaseUrl && PG_RTT_MS > 0 ? await startLatencyProxy(databaseUrl) : undefined;
  const apiKey = `bench-${randomBytes(16).toString('hex')}`;
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    DATA_DIR: dataDir,
    POLICIES_DIR: join(ROOT, 'policies'),
    SLUICE_BOOTSTRAP_KEY: apiKey,
    LOG_LEVEL: 'warn',
    // One integration pushing as hard as it can: the per-key rate limit must not be what is measured.
    RATE_LIMIT_PER_SECOND: '1000000',
    RATE_LIMIT_BURST: '1000000',
    DELIVERY_WORKER,
    AUDIT_SIGNING_KEY: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    SLUICE_MASTER_KEY: randomBytes(32).toString('base64'),
    ...(databaseUrl ? { DATABASE_URL: proxy?.url ?? databaseUrl } : { SQLITE_PATH: join(dataDir, 'sluice.db') }),
    ...(databaseUrl && process.env.SHARE_COMMITS_IN_FLIGHT ? { SHARE_COMMITS_IN_FLIGHT: process.env.SHARE_COMMITS_IN_FLIGHT } : {}),
  };
  const args = [...START_FLAGS, ...(process.env.E2E_NODE_ARGS?.split(' ').filter(Boolean) ?? []), ...(CPU_PROFILES ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROFILES}`, `--cpu-prof-name=${dialect}-${Date.now()}.cpuprofile`] : [])];
  const { url, child } = await startChild(join(ROOT, 'dist/src/main.js'), args, env, async (base) => (await fetch(`${base}/ready`)).ok).catch(async (error: unknown) => {
    if (proxy) await stopChild(proxy.child);
    throw error;
  });
  const grant = async (type: string, id: string) => {
    const response = await fetch(`${url}/v1/consents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ subject: { type, id }, purpose: 'frontline-updates', status: 'granted', evidence: { method: 'form', text: 'notice v3' } }),
    });
    if (response.status !== 201) throw new Error(`consent answered ${response.status}`);
  };
  await grant('whatsapp', RECIPIENT);
  await grant('workplace', AUTHOR);
  const counts = 'SELECT (SELECT count(*) FROM audit_entries) AS entries, (SELECT count(*) FROM audit_checkpoints) AS checkpoints';
  return {
    url,
    apiKey,
    child,
    async log() {
      let row: { entries: number | string; checkpoints: number | string };
      if (databaseUrl) {
        const client = new pg.Client({ connectionString: databaseUrl });
        await client.connect();
        row = (await client.query(counts).finally(() => client.end())).rows[0];
      } else {
        const db = new Database(join(dataDir, 'sluice.db'), { readonly: true });
        row = db.prepare(counts).get() as typeof row;
        db.close();
      }
      return { entries: Number(row.entries), checkpoints: Number(row.checkpoints) };
    },
    async stop() {
      await stopChild(child);
      if (proxy) await stopChild(proxy.child);
      rmSync(dataDir, { recursive: true, force: true });
      if (databaseUrl) await dropPostgresDatabase(databaseUrl);
    },
  };
}

/** The latency proxy (bench/latency-proxy.ts) in front of the database; returns the URL to reach it through. */
async function startLatencyProxy(databaseUrl: string): Promise<{ url: string; child: ChildProcess }> {
  const direct = new URL(databaseUrl);
  const port = await freePort();
  const child = spawn(process.execPath, [join(ROOT, 'dist/bench/latency-proxy.js')], {
    env: { PATH: process.env.PATH ?? '', TARGET_HOST: direct.hostname.replace(/^\[(.*)\]$/, '$1'), TARGET_PORT: direct.port || '5432', PORT: String(port), ONE_WAY_MS: String(PG_RTT_MS / 2) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await once(child.stdout!, 'data');
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return { url: url.toString(), child };
}

async function startBare(responseBytes: number): Promise<Server> {
  // With the gateway's node flags: the baseline gets whatever they give too.
  const { url, child } = await startChild(join(ROOT, 'dist/bench/bare-server.js'), START_FLAGS, { NODE_ENV: 'production', RESPONSE_BYTES: String(responseBytes) }, async (base) => {
    const response = await fetch(`${base}/v1/shares`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: SHARE });
    return response.status === 201 && (await response.text()).length === responseBytes;
  });
  return { url, apiKey: 'none', child, stop: () => stopChild(child) };
}

/** One share through the gateway, checked: the answer's size sizes the bare endpoint's. */
async function probe(server: Server, idempotencyKey: string): Promise<number> {
  const response = await fetch(`${server.url}/v1/shares`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.apiKey}`, 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
    body: SHARE,
  });
  const text = await response.text();
  const document = JSON.parse(text) as { status?: string; audit?: { index?: number } };
  if (response.status !== 201 || document.status !== 'accepted' || typeof document.audit?.index !== 'number') throw new Error(`the probe share was not accepted and sequenced: ${response.status} ${text}`);
  return Buffer.byteLength(text);
}

/** Load for `seconds`: every request a new share, or with `replayOf` the share of that Idempotency-Key again. */
function load(server: Server, seconds: number, replayOf?: string): Promise<Result> {
  const prefix = randomBytes(6).toString('hex');
  let next = 0;
  return autocannon({
    url: server.url,
    connections: CONNECTIONS,
    duration: seconds,
    timeout: 30,
    requests: [
      {
        method: 'POST',
        path: '/v1/shares',
        headers: { authorization: `Bearer ${server.apiKey}`, 'content-type': 'application/json' },
        body: SHARE,
        // Every request is a new share (its own Idempotency-Key), or the same one replayed.
        setupRequest: (request) => ({ ...request, headers: { ...request.headers, 'idempotency-key': replayOf ?? `${prefix}-${next++}` } }),
      },
    ],
  });
}

async function measureTarget(target: Target, responseBytes: number): Promise<{ runs: Run[]; responseBytes: number }> {
  const server = target === 'bare' ? await startBare(responseBytes) : await startGateway(target);
  try {
    const probeKey = `probe-${randomBytes(8).toString('hex')}`;
    const size = target === 'bare' ? responseBytes : await probe(server, probeKey);
    await load(server, WARMUP_S);
    const runs = [await measureLoad(server, target)];
    // Then the probe's share again and again, answered from its record: what the request costs
    // without deciding and writing, a ceiling for what a cheaper decision and commit could reach.
    if (target !== 'bare') runs.push(await measureLoad(server, `${target} replay`, probeKey));
    return { responseBytes: size, runs };
  } finally {
    await server.stop();
  }
}

async function measureLoad(server: Server, target: Target | Replay, replayOf?: string): Promise<Run> {
  const logBefore = await server.log?.();
  const cpuBefore = cpuSeconds(server.child);
  const result = await load(server, DURATION_S, replayOf);
  const cpuAfter = cpuSeconds(server.child);
  const answered = result['2xx'];
  const cpuMsEach = cpuBefore !== undefined && cpuAfter !== undefined && answered > 0 ? ((cpuAfter - cpuBefore) * 1000) / answered : undefined;
  let note = '';
  const logAfter = await server.log?.();
  if (logBefore && logAfter) {
    const entries = logAfter.entries - logBefore.entries;
    const checkpoints = logAfter.checkpoints - logBefore.checkpoints;
    note = entries === 0 ? 'nothing written' : `${entries} entries in ${checkpoints} signed checkpoints (${(entries / checkpoints).toFixed(1)} each)`;
  }
  return { target, perSecond: answered / result.duration, p50: result.latency.p50, p99: result.latency.p99, answered, failed: result.non2xx + result.errors, cpuMsEach, note };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const dialects = ((await postgresReachable()) ? ['sqlite', 'postgres'] : ['sqlite']).filter((d) => !ONLY || ONLY.includes(d)) as ('sqlite' | 'postgres')[];
  const targets = [...dialects, 'bare'].filter((t) => !ONLY || ONLY.includes(t)) as Target[];
  // The bare endpoint answers as many bytes as a gateway's probe share did: it needs one measured first.
  if (targets.length === 0 || targets[0] === 'bare') throw new Error(`E2E_ONLY=${ONLY?.join(',')} measures no gateway: name sqlite or postgres too (the bare endpoint's answer is sized by a gateway's)`);
  console.log(`# end to end: POST /v1/shares — ${new Date().toISOString().slice(0, 10)}, ${machine()}`);
  const rtt = PG_RTT_MS > 0 ? `; PostgreSQL ${PG_RTT_MS} ms away (round trip, through a latency proxy)` : '';
  console.log(`${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION_S} s after ${WARMUP_S} s of warm-up; text post, one consented recipient; delivery worker ${DELIVERY_WORKER}${rtt}\n`);
  const runs: Run[][] = [];
  let responseBytes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const runsOfRound: Run[] = [];
    // The gateways first: the first probe sizes the bare endpoint's answer.
    for (const target of targets) {
      const measured = await measureTarget(target, responseBytes);
      responseBytes ||= measured.responseBytes;
      runsOfRound.push(...measured.runs);
      for (const r of measured.runs) {
        const cpu = r.cpuMsEach === undefined ? '' : `  server CPU ${(r.cpuMsEach * 1000).toFixed(0)} µs each`;
        console.log(`round ${round + 1} ${r.target.padEnd(15)} ${fmt(r.perSecond).padStart(7)}/s  p50 ${r.p50} ms  p99 ${r.p99} ms  ${r.answered} answered, ${r.failed} failed${cpu}  ${r.note}`);
        if (r.failed > 0) throw new Error(`${r.target}: ${r.failed} requests failed`);
      }
    }
    runs.push(runsOfRound);
  }
  if (!targets.includes('bare')) return;

  const of = (target: Target | Replay) => runs.map((round) => round.find((r) => r.target === target)!);
  const bare = median(of('bare').map((r) => r.perSecond));
  console.log(`\nresponse body: ${responseBytes} bytes (the bare endpoint answers as many)\n`);
  const cpu = (target: Target | Replay) => {
    const each = of(target).flatMap((r) => (r.cpuMsEach === undefined ? [] : [r.cpuMsEach]));
    return each.length > 0 ? `${Math.round(median(each) * 1000)} µs` : 'n/a';
  };
  console.log('| Target | per second | p50 | p99 | server CPU each | vs. bare (median; each round) |');
  console.log('|---|---:|---:|---:|---:|---:|');
  console.log(`| bare NestJS on Fastify (baseline) | ${fmt(bare)} | ${median(of('bare').map((r) => r.p50))} ms | ${median(of('bare').map((r) => r.p99))} ms | ${cpu('bare')} | 1.000x |`);
  const verdicts: string[] = [];
  for (const dialect of dialects) {
    const ratios = runs.map((round) => round.find((r) => r.target === dialect)!.perSecond / round.find((r) => r.target === 'bare')!.perSecond);
    const ratio = median(ratios);
    const p99 = median(of(dialect).map((r) => r.p99));
    console.log(`| sluice, ${dialect} | ${fmt(median(of(dialect).map((r) => r.perSecond)))} | ${median(of(dialect).map((r) => r.p50))} ms | ${p99} ms | ${cpu(dialect)} | ${ratio.toFixed(3)}x (${ratios.map((x) => x.toFixed(3)).join(', ')}) |`);
    const goal = TARGETS[dialect];
    const replay = `${dialect} replay` as const;
    const replayRatios = runs.map((round) => round.find((r) => r.target === replay)!.perSecond / round.find((r) => r.target === 'bare')!.perSecond);
    console.log(`| (reference) sluice, ${dialect}, the same share replayed: nothing decided or written | ${fmt(median(of(replay).map((r) => r.perSecond)))} | ${median(of(replay).map((r) => r.p50))} ms | ${median(of(replay).map((r) => r.p99))} ms | ${cpu(replay)} | ${median(replayRatios).toFixed(3)}x (${replayRatios.map((x) => x.toFixed(3)).join(', ')}) |`);
    verdicts.push(`${dialect}: ratio ${ratio.toFixed(3)} (target >= ${goal}: ${ratio >= goal ? 'met' : 'NOT met'}), p99 ${p99} ms (target < ${TARGETS.p99Ms} ms: ${p99 < TARGETS.p99Ms ? 'met' : 'NOT met'})`);
  }
  if (!dialects.includes('postgres')) console.log(`\nPostgreSQL at ${POSTGRES_ADMIN_URL} is not reachable: its row is missing.`);
  console.log(`\n${verdicts.join('\n')}`);
}

await main();
