import { existsSync, readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseVerifierKey } from '../domain/checkpoint.js';
import { verifyBundleFile } from './bundle-verifier.js';

export const VERIFY_USAGE = `  audit verify <bundle> [--public-key <file|key>] [--trusted-checkpoint <file>] [--threads <n>]
                                           verify an export offline: signatures, proofs, every entry
                                           (exit 0 only if all holds; 1 names the first bad index)`;

interface Io {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/**
 * `sluice audit verify`: needs no database, no configuration and no server code, so it can be
 * shipped to a DPO alone (with schemas/). Exit 0 only if everything holds, 1 on the first fault,
 * 2 when it cannot start (usage, unreadable files).
 */
export async function runVerifyCommand(args: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { 'public-key': { type: 'string' }, 'trusted-checkpoint': { type: 'string' }, threads: { type: 'string' } },
    });
  } catch (error) {
    io.err.write(`${(error as Error).message}\n${VERIFY_USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [bundle] = positionals;
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  if (!bundle || positionals.length > 1 || (threads !== undefined && !(Number.isInteger(threads) && threads >= 0 && threads <= 64))) {
    io.err.write(`usage:\n${VERIFY_USAGE}\n`);
    return 2;
  }
  let publicKey: string | undefined;
  let trustedCheckpoint: string | undefined;
  try {
    const keyArgument = values['public-key'];
    // A verifier key never names a file (it holds '+'), so a path that exists is read; one without
    // a '+' that does not exist was meant as a file.
    if (keyArgument !== undefined && !keyArgument.includes('+') && !existsSync(keyArgument)) throw new Error(`--public-key ${keyArgument}: no such file`);
    publicKey = keyArgument !== undefined && existsSync(keyArgument) ? readFileSync(keyArgument, 'utf8') : keyArgument;
    if (publicKey !== undefined) usableKey(publicKey);
    const kept = values['trusted-checkpoint'];
    if (kept !== undefined && !existsSync(kept)) throw new Error(`--trusted-checkpoint ${kept}: no such file`);
    // A note ends in one newline; a kept copy may carry more (`jq -r` adds one) or none (an
    // editor, `printf %s`), \r\n line ends, or a byte order mark.
    trustedCheckpoint = kept === undefined ? undefined : `${readFileSync(kept, 'utf8').replace(/^\uFEFF/, '').replace(/\r\n/g, '\n').replace(/\n+$/, '')}\n`;
    if (!existsSync(bundle)) throw new Error(`${bundle}: no such file`);
    if (!statSync(bundle).isFile()) throw new Error(`${bundle}: not a file (a bundle is the one file audit export wrote)`);
  } catch (error) {
    io.err.write(`${(error as Error).message}\n`);
    return 2;
  }
  const started = process.hrtime.bigint();
  const report = await verifyBundleFile(bundle, { publicKey, trustedCheckpoint, threads });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  io.out.write(`bundle      ${bundle}${report.format ? ` (${report.format === 'ndjson' ? 'NDJSON' : 'CSV'})` : ''}\n`);
  for (const line of report.checked) io.out.write(`${line}\n`);
  for (const warning of report.warnings) io.err.write(`warning: ${warning}\n`);
  if (!report.ok) {
    const failure = report.failure!;
    io.err.write(`FAILED${failure.index === null ? '' : ` at index ${failure.index}`}: ${failure.reason}\n`);
    return 1;
  }
  // A rate means something once the start (compiling the schemas) no longer dominates.
  const rate = seconds >= 1 ? `, ${Math.round(report.entries / seconds).toLocaleString('en-US')} entries/s` : '';
  io.out.write(`OK          ${report.entries} entries verified in ${seconds.toFixed(2)} s${rate}\n`);
  return 0;
}

function usableKey(text: string): void {
  try {
    parseVerifierKey(text);
  } catch (error) {
    throw new Error(`--public-key: ${(error as Error).message}`, { cause: error });
  }
}
