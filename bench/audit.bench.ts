/**
 * The DPO's side of the audit log at 1,000,000 entries: export peak memory and offline
 * verification speed. Builds a realistic SQLite log first (the entries a day of busy sharing
 * writes: decisions, sends, delivery statuses, consents), exports it with `sluice audit export` in
 * a child process and reads that process's peak RSS, then verifies the exported bundle, set
 * against a baseline measured in the same run: plain SHA-256 of the same bytes. Run with
 * `npm run bench:audit` (ENTRIES=... for another size).
 */
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { runAuditCommand } from '../src/audit/cli/audit-cli.js';
import { canonicalJson } from '../src/audit/domain/canonical-json.js';
import { signCheckpoint, verifierKey } from '../src/audit/domain/checkpoint.js';
import { appendLeaves, leafHash, type SubtreeNode } from '../src/audit/domain/merkle.js';
import { verificationThreads, verifyBundleFile } from '../src/audit/verifier/bundle-verifier.js';
import { createDataSource } from '../src/data-source.js';
import { machine } from './measure.js';

const ENTRIES = Number(process.env.ENTRIES ?? 1_000_000);
const ORIGIN = 'sluice.local/audit';
const SEQUENCER_BATCH = 500;

/** The child: verifies a bundle in a fresh process, as a DPO runs it, and reports wall and CPU time. */
async function verifyChild(bundle: string, publicKey: string, threads: number): Promise<void> {
  const started = performance.now();
  const report = await verifyBundleFile(bundle, { publicKey, threads });
  const used = process.cpuUsage();
  process.stdout.write(JSON.stringify({ ok: report.ok, entries: report.entries, failure: report.failure, seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6 }));
}

/** The child: exports the log through the CLI path and reports its own peak memory. */
async function exportChild(sqlitePath: string, out: string, signingKeyPem: string): Promise<void> {
  const started = performance.now();
  const sink = { write: () => true } as unknown as NodeJS.WritableStream;
  const code = await runAuditCommand('export', ['--out', out], { SQLITE_PATH: sqlitePath, AUDIT_SIGNING_KEY: signingKeyPem, DATA_DIR: tmpdir() }, { out: sink, err: process.stderr });
  const status = readFileSync('/proc/self/status', 'utf8');
  const vmHwmKb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  process.stdout.write(JSON.stringify({ code, seconds: (performance.now() - started) / 1000, maxRssKb: process.resourceUsage().maxRSS, vmHwmKb }));
}

const token = (bytes: number) => randomBytes(bytes).toString('base64url');
const pseudonym = () => `ps_${token(32)}`;
const digest = () => `hd_${token(32)}`;

/** What the gateway writes for one share to `recipients` people, with its sends and delivery statuses. */
function shareActivity(recipients: number): { kind: string; body: Record<string, unknown> }[] {
  const share = `shr_${token(12)}`;
  const decision = `ent_${token(12)}`;
  const people = Array.from({ length: recipients }, pseudonym);
  const author = pseudonym();
  const entries: { kind: string; body: Record<string, unknown>; id?: string }[] = [
    {
      kind: 'share.decided',
      id: decision,
      body: {
        share,
        purpose: 'frontline-updates',
        policy: { name: 'frontline-updates', bundle: `sha256:${'5e'.repeat(32)}` },
        lawfulBasis: 'consent',
        status: 'accepted',
        reasons: [],
        requestedBy: 'key_7c1f0e4b9a2d4c31b8e6f5a0d3c2b1a9',
        sharedBy: author,
        post: digest(),
        recipients: people.map((subject) => ({ subject, decision: 'allowed', reasons: [] })),
        subjects: [
          { role: 'author', subject: author, subjectType: 'workplace', consent: 'granted', categories: ['user.name'] },
          { role: 'mentioned', subject: pseudonym(), subjectType: 'workplace', consent: 'none', categories: ['user.name'] },
        ],
        crossing: {
          fields: [
            { path: 'message', category: 'user.content', transform: 'redact-pii' },
            { path: 'from.name', category: 'user.name', transform: 'none', subject: author },
          ],
          dropped: [{ path: 'place', reason: 'not_allow_listed' }, { path: 'permalink_url', reason: 'not_allow_listed' }, { path: 'from.id', reason: 'not_allow_listed' }],
          redactions: [{ path: 'message', recogniser: 'mention', count: 1 }, { path: 'message', recogniser: 'phone', count: 1 }],
        },
        content: { type: 'text', digest: digest(), length: 212, sealed: `sealed:v1:${token(240)}` },
      },
    },
  ];
  for (const recipient of people) {
    const message = { share, outbox: `out_${token(12)}`, decision, recipient };
    const whatsappMessage = `wamid.HBgLMzE2${token(30)}`;
    entries.push({ kind: 'message.sent', body: { ...message, attempt: 1, whatsappMessage } });
    for (const status of ['delivered', 'read']) entries.push({ kind: 'message.status', body: { ...message, status, whatsappMessage, reportedAt: new Date().toISOString() } });
  }
  return entries;
}

function consentChange(status: 'granted' | 'withdrawn'): { kind: string; body: Record<string, unknown> } {
  return {
    kind: `consent.${status}`,
    body: { consent: `cns_${token(12)}`, subject: pseudonym(), subjectType: 'whatsapp', purpose: 'frontline-updates', evidence: { method: 'whatsapp-optin', digest: digest() } },
  };
}

/** Writes the log as the sequencer would: batches of entries, their complete subtrees and one signed checkpoint per batch. */
async function buildDatabase(path: string, signingKey: ReturnType<typeof generateKeyPairSync>['privateKey']): Promise<Record<string, number>> {
  const dataSource = createDataSource({ type: 'sqlite', path });
  await dataSource.initialize();
  await dataSource.runMigrations({ transaction: 'each' });
  await dataSource.destroy();

  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const insertEntry = db.prepare('INSERT INTO audit_entries (idx, id, kind, entry, leaf_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)');
  const insertNode = db.prepare('INSERT INTO audit_subtrees (level, idx, hash) VALUES (?, ?, ?)');
  const insertCheckpoint = db.prepare('INSERT INTO audit_checkpoints (tree_size, root_hash, note, created_at) VALUES (?, ?, ?, ?)');
  const kinds: Record<string, number> = {};
  let size = 0;
  let frontier: SubtreeNode[] = [];
  let pending: { kind: string; body: Record<string, unknown>; id?: string }[] = [];
  const writeBatch = db.transaction((batch: typeof pending) => {
    const time = new Date().toISOString();
    const texts = batch.map((draft, offset) => canonicalJson({ ...draft.body, v: 1, kind: draft.kind, id: draft.id ?? `ent_${token(12)}`, index: size + offset, time }));
    const leaves = texts.map((text) => leafHash(Buffer.from(text, 'utf8')));
    const appended = appendLeaves(size, frontier, leaves);
    texts.forEach((text, offset) => insertEntry.run(size + offset, JSON.parse(text).id, batch[offset]!.kind, text, Buffer.from(leaves[offset]!).toString('hex'), time));
    for (const node of appended.newNodes) insertNode.run(node.level, node.index, Buffer.from(node.hash).toString('hex'));
    const note = signCheckpoint({ origin: ORIGIN, size: appended.size, root: appended.root, privateKey: signingKey });
    insertCheckpoint.run(appended.size, Buffer.from(appended.root).toString('hex'), note, time);
    ({ size, frontier } = appended);
  });
  for (let share = 0; size + pending.length < ENTRIES; share++) {
    const drafts = share % 4 === 0 ? [consentChange(share % 40 === 0 ? 'withdrawn' : 'granted'), ...shareActivity(1 + (share % 3))] : shareActivity(1 + (share % 3));
    for (const draft of drafts) {
      if (size + pending.length === ENTRIES) break;
      kinds[draft.kind] = (kinds[draft.kind] ?? 0) + 1;
      pending.push(draft);
      if (pending.length === SEQUENCER_BATCH) {
        writeBatch(pending);
        pending = [];
      }
    }
  }
  if (pending.length > 0) writeBatch(pending);
  db.close();
  return kinds;
}

async function sha256Of(path: string): Promise<number> {
  const started = performance.now();
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  hash.digest();
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-bench-'));
  try {
    const signingKey = generateKeyPairSync('ed25519').privateKey;
    const signingKeyPem = signingKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const database = join(dir, 'sluice.db');
    const bundle = join(dir, 'audit.ndjson');

    const started = performance.now();
    const kinds = await buildDatabase(database, signingKey);
    const buildSeconds = (performance.now() - started) / 1000;

    const child = JSON.parse(
      execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--export-child', database, bundle], { env: { ...process.env, SLUICE_BENCH_KEY: signingKeyPem }, maxBuffer: 1 << 20 }).toString('utf8'),
    ) as { code: number; seconds: number; maxRssKb: number; vmHwmKb: number };
    if (child.code !== 0) throw new Error(`the export exited with ${child.code}`);

    const bytes = statSync(bundle).size;
    const publicKey = verifierKey(ORIGIN, signingKey);
    const baseline = await sha256Of(bundle);
    const threads = verificationThreads(bytes);
    const load = loadavg()[0]!;
    // Each in a fresh process (this one holds the heap of building the log); CPU time counts every thread of it.
    const runs: { name: string; seconds: number; cpuSeconds: number }[] = [];
    for (const [name, workers] of [
      ['offline verification, 1 thread', 0],
      [`offline verification, this thread + ${threads} worker thread(s) (the default here)`, threads],
    ] as const) {
      const run = JSON.parse(
        execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--verify-child', bundle, String(workers)], { env: { ...process.env, SLUICE_BENCH_VKEY: publicKey }, maxBuffer: 1 << 20 }).toString('utf8'),
      ) as { ok: boolean; entries: number; failure: unknown; seconds: number; cpuSeconds: number };
      if (!run.ok || run.entries !== ENTRIES) throw new Error(`verification failed: ${JSON.stringify(run.failure)}`);
      runs.push({ name, seconds: run.seconds, cpuSeconds: run.cpuSeconds });
    }

    const rate = (seconds: number) => Math.round(ENTRIES / seconds);
    const mix = Object.entries(kinds)
      .sort((a, b) => b[1] - a[1])
      .map(([kind, count]) => `${kind} ${((100 * count) / ENTRIES).toFixed(1)}%`)
      .join(', ');
    console.log(`# audit export and offline verification — ${new Date().toISOString().slice(0, 10)}, ${machine()}`);
    console.log(`log: ${ENTRIES.toLocaleString('en-US')} entries (${mix}), built in ${buildSeconds.toFixed(1)} s; database ${(statSync(database).size / 1e6).toFixed(0)} MB (SQLite)`);
    console.log(`bundle: ${(bytes / 1e6).toFixed(1)} MB NDJSON, ${Math.round(bytes / ENTRIES)} bytes per entry; load average before verifying ${load.toFixed(2)} on ${availableParallelism()} CPUs\n`);
    console.log('| Measurement | entries per second | seconds | vs. baseline | CPU seconds (all threads) | entries per CPU second |');
    console.log('|---|---:|---:|---:|---:|---:|');
    console.log(`| plain SHA-256 of the bundle's bytes (baseline) | ${rate(baseline).toLocaleString('en-US')} | ${baseline.toFixed(2)} | 1.000x | | |`);
    for (const run of runs) {
      console.log(
        `| ${run.name} | ${rate(run.seconds).toLocaleString('en-US')} | ${run.seconds.toFixed(2)} | ${(baseline / run.seconds).toFixed(3)}x | ${run.cpuSeconds.toFixed(2)} | ${rate(run.cpuSeconds).toLocaleString('en-US')} |`,
      );
    }
    console.log();
    console.log('| Export (`sluice audit export --out`, child process) | peak RSS (maxRSS) | VmHWM | seconds | entries per second |');
    console.log('|---|---:|---:|---:|---:|');
    console.log(`| ${ENTRIES.toLocaleString('en-US')} entries from SQLite | ${(child.maxRssKb / 1024).toFixed(1)} MB | ${(child.vmHwmKb / 1024).toFixed(1)} MB | ${child.seconds.toFixed(1)} | ${rate(child.seconds).toLocaleString('en-US')} |`);
    const best = Math.max(...runs.map((r) => rate(r.seconds)));
    console.log(`\ntarget: verification >= 200,000 entries/s: ${best >= 200_000 ? 'met' : 'NOT met'} (${best.toLocaleString('en-US')} at best)`);
    console.log(`target: export peak RSS < 256 MB: ${child.maxRssKb / 1024 < 256 ? 'met' : 'NOT met'} (${(child.maxRssKb / 1024).toFixed(1)} MB)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--export-child') await exportChild(process.argv[3]!, process.argv[4]!, process.env.SLUICE_BENCH_KEY!);
else if (process.argv[2] === '--verify-child') await verifyChild(process.argv[3]!, process.env.SLUICE_BENCH_VKEY!, Number(process.argv[4]));
else await main();
