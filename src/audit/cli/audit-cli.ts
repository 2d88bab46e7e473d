import { createPrivateKey } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { openExistingDatabase } from '../../data-source.js';
import { loadConfig, type SluiceConfig } from '../../platform/config/config.js';
import { syncReadsOf } from '../../platform/database/wal-sync.js';
import type { FieldProblem } from '../../platform/http/problem.js';
import { parseVerifierKey, verifierKey, verifyCheckpoint } from '../domain/checkpoint.js';
import { AuditExporter } from '../export/audit-exporter.js';
import { AuditTreeReader } from '../proofs/audit-tree-reader.js';
import { parseIndexParameter } from '../proofs/query-numbers.js';
import type { BundleFormat } from '../verifier/bundle-format.js';
import { runVerifyCommand, VERIFY_USAGE } from '../verifier/verify-command.js';

export const AUDIT_USAGE = `  audit export [--since <index>] [--until <index>] [--format ndjson|csv] [--out <file>]
               [--trusted-checkpoint <file>]
                                           stream a bundle of the log (all of it by default) to verify
                                           offline; with a consistency proof from the kept checkpoint
${VERIFY_USAGE}`;

/** The export's parameters as the command line names them. */
const OPTION_OF: Record<string, string> = { since: '--since', until: '--until', consistencyFrom: '--trusted-checkpoint' };

interface Io {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** `sluice audit <verb>`: returns the exit code (2 for usage errors). */
export async function runAuditCommand(verb: string | undefined, args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  if (verb === 'verify') return runVerifyCommand(args, io);
  if (verb === 'export') return runExport(args, env, io);
  io.err.write(`usage:\n${AUDIT_USAGE}\n`);
  return 2;
}

async function runExport(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        since: { type: 'string' },
        until: { type: 'string' },
        format: { type: 'string', default: 'ndjson' },
        out: { type: 'string' },
        'trusted-checkpoint': { type: 'string' },
      },
    }));
  } catch (error) {
    io.err.write(`${(error as Error).message}\nusage:\n${AUDIT_USAGE}\n`);
    return 2;
  }
  const problems: FieldProblem[] = [];
  const since = parseIndexParameter(values.since, '--since', problems);
  const until = parseIndexParameter(values.until, '--until', problems);
  if (since !== undefined && until !== undefined && since > until) problems.push({ path: '--until', message: `until must not be below since (${since})` });
  if (values.format !== 'ndjson' && values.format !== 'csv') problems.push({ path: '--format', message: '--format must be ndjson or csv' });
  if (values.out !== undefined && !isFolder(dirname(resolve(values.out)))) problems.push({ path: '--out', message: `no folder ${dirname(resolve(values.out))} to write ${values.out} in` });
  let consistencyFrom: number | undefined;
  if (values['trusted-checkpoint'] !== undefined) {
    consistencyFrom = trustedSize(values['trusted-checkpoint']);
    if (consistencyFrom === undefined) problems.push({ path: '--trusted-checkpoint', message: 'not a readable checkpoint (origin, tree size and root lines)' });
  }
  if (problems.length > 0) return usageProblems(problems, io);

  const config = loadConfig(env);
  const opened = await openExistingDatabase(config.database);
  if ('problem' in opened) {
    io.err.write(`audit export: ${opened.problem}\n`);
    return 2;
  }
  const { dataSource } = opened;
  try {
    const configuredKey = logPublicKey(config);
    // Only the key that signed the log's checkpoint: one from another origin or an old key file
    // would make a sound bundle fail verification.
    const checkpoint = await new AuditTreeReader(dataSource.manager).latestCheckpoint();
    const publicKey = configuredKey !== null && checkpoint && verifyCheckpoint(checkpoint.note, parseVerifierKey(configuredKey)).ok ? configuredKey : null;
    if (configuredKey !== null && checkpoint && publicKey === null) {
      io.err.write(`warning: the signing key at hand (AUDIT_SIGNING_KEY or DATA_DIR, origin ${config.auditLogOrigin}) did not sign the log's checkpoint: the bundle carries no public key; verify it with --public-key\n`);
    }
    const exporter = new AuditExporter(dataSource.manager, publicKey);
    const prepared = await exporter.prepare({ since, until, format: values.format as BundleFormat, consistencyFrom });
    if ('problems' in prepared) return usageProblems(prepared.problems.map((p) => ({ ...p, path: OPTION_OF[p.path] ?? p.path })), io);
    // The checkpoint just read, and every entry it covers, on disk before any of it is written out.
    await syncReadsOf(dataSource);
    const { header } = prepared.plan;
    const target = values.out === undefined ? io.out : createWriteStream(values.out);
    // Page by page with backpressure: never more than a page in memory.
    for await (const chunk of exporter.stream(prepared.plan)) {
      if (!target.write(chunk)) await once(target, 'drain');
    }
    if (target !== io.out) {
      target.end();
      await once(target, 'finish');
    }
    const summary = values.out === undefined ? io.err : io.out;
    summary.write(
      `exported entries ${header.since}..${header.until} (${header.until - header.since + 1}) with the checkpoint of tree size ${checkpointSize(header.checkpoint)}` +
        `${values.out === undefined ? '' : ` to ${values.out}`}${header.consistency ? `, and a consistency proof from tree size ${header.consistency.from}` : ''}\n`,
    );
    if (configuredKey === null) io.err.write('warning: no audit signing key at hand (AUDIT_SIGNING_KEY or DATA_DIR): the bundle carries no public key; verify it with --public-key\n');
    return 0;
  } finally {
    await dataSource.destroy();
  }
}

function usageProblems(problems: FieldProblem[], io: Io): number {
  for (const problem of problems) io.err.write(`${problem.path}: ${problem.message}\n`);
  return 2;
}

/** The tree size line of a checkpoint note; its signature is the verifier's business. */
function trustedSize(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const size = readFileSync(path, 'utf8').split(/\r?\n/)[1];
  return size !== undefined && /^[1-9][0-9]{0,15}$/.test(size) ? Number(size) : undefined;
}

function checkpointSize(note: string): string {
  return note.split('\n')[1] ?? '?';
}

/**
 * The log's verifier key from its signing key, configured or in the data folder where the server
 * keeps the one it generated (platform/crypto/key-material.ts). Never generates one: a new key
 * would not be the log's.
 */
function logPublicKey(config: SluiceConfig): string | null {
  const keyFile = join(config.dataDir, 'audit-signing-key.pem');
  const signingKey = config.auditSigningKey ?? (existsSync(keyFile) ? createPrivateKey(readFileSync(keyFile, 'utf8')) : undefined);
  return signingKey ? verifierKey(config.auditLogOrigin, signingKey) : null;
}

function isFolder(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}
