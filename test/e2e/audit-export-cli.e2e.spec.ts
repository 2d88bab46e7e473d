import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../support/build.js';
import { REPO_ROOT } from '../support/test-app.js';
import { buildBundle, buildLog } from '../unit/audit/bundle-fixtures.js';

/** Runs the real binary, as a DPO would, with no database and no sluice configuration at all. */
function sluice(args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'sluice.js'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

describe('npx sluice audit verify, on its own', () => {
  // Over 3 MiB: several 1 MiB batches, shared between worker threads and the verifier's own, and put back in order.
  const log = buildLog(7000);
  let dir: string;

  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'sluice-verify-'));
  }, 180_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('verifies a bundle of several batches on worker threads, and names the first bad index when later batches are bad too', () => {
    const bundle = buildBundle(log, { since: 100 });
    expect(bundle.length).toBeGreaterThan(3 * 1024 * 1024);
    const good = join(dir, 'good.ndjson');
    writeFileSync(good, bundle);
    const verified = sluice(['audit', 'verify', good, '--public-key', log.publicKey, '--threads', '2', '--trusted-checkpoint', writeNote('kept', log.checkpoint(4000))]);
    expect([verified.status, verified.stderr]).toEqual([0, '']);
    expect(verified.stdout).toContain('consistency trusted checkpoint (tree size 4000): its root recomputed from the entries up to index 3999: OK\n');
    expect(verified.stdout).toMatch(/\nOK {10}6900 entries verified in /);

    const lines = bundle.toString('utf8').split('\n');
    for (const index of [6500, 5000, 2500]) lines[index - 100 + 1] = lines[index - 100 + 1]!.replace(/"time":"\d/, '"time":"1');
    const tampered = join(dir, 'tampered.ndjson');
    writeFileSync(tampered, lines.join('\n'));
    for (const threads of ['2', '1', '0']) {
      const result = sluice(['audit', 'verify', tampered, '--public-key', log.publicKey, '--threads', threads]);
      expect([threads, result.status, result.stderr.split('\n').at(-2)]).toEqual([threads, 1, 'FAILED at index 2500: the entry does not hash to the leaf hash recorded for it: the entry or its leaf hash was changed']);
    }
  });

  it('names a bad entry, not a later over-long line, as the first bad index', () => {
    const lines = buildBundle(log, { since: 100 }).toString('utf8').split('\n');
    const at = (index: number) => index - 100 + 1;
    const good = lines[at(2500)]!;
    // Over the 64 MiB a line may take: entries before it are still being checked on the worker threads when it is found.
    lines[at(3000)] = 'x'.repeat(65 * 1024 * 1024);
    const bundle = join(dir, 'long-line.ndjson');
    const lastLine = (bad: string) => {
      lines[at(2500)] = bad;
      writeFileSync(bundle, lines.join('\n'));
      const result = sluice(['audit', 'verify', bundle, '--public-key', log.publicKey, '--threads', '2']);
      return [result.status, result.stderr.split('\n').at(-2)];
    };
    expect(lastLine(good.replace(/"time":"\d/, '"time":"1'))).toEqual([1, 'FAILED at index 2500: the entry does not hash to the leaf hash recorded for it: the entry or its leaf hash was changed']);
    expect(lastLine(good)).toEqual([1, `FAILED at index 3000: a line is longer than ${64 * 1024 * 1024} bytes`]);
  });

  it('takes a kept checkpoint saved without its last newline, or with a byte order mark', () => {
    const small = buildLog(20);
    const bundle = join(dir, 'twenty.ndjson');
    writeFileSync(bundle, buildBundle(small));
    const note = small.checkpoint(10);
    expect(note.endsWith('\n')).toBe(true);
    for (const [name, kept] of [['no-newline', note.replace(/\n$/, '')], ['bom', `\uFEFF${note}`], ['crlf', note.replaceAll('\n', '\r\n')]] as const) {
      const result = sluice(['audit', 'verify', bundle, '--public-key', small.publicKey, '--trusted-checkpoint', writeNote(name, kept)]);
      expect([name, result.status, result.stderr]).toEqual([name, 0, '']);
    }
  });

  it('warns that a bundle checked only against its own key proves only its own consistency', () => {
    const small = join(dir, 'small.csv');
    writeFileSync(small, buildBundle(buildLog(5), { format: 'csv' }));
    const result = sluice(['audit', 'verify', small]);
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(/^warning: the public key is the bundle's own, so this only shows that the bundle is consistent with itself/);
  });

  it('exits 2 when it cannot start: no bundle, a missing file, an unusable key, an unknown option or verb', () => {
    const bundle = join(dir, 'small.csv');
    for (const args of [
      ['audit', 'verify'],
      ['audit', 'verify', join(dir, 'missing.ndjson')],
      ['audit', 'verify', bundle, '--public-key', 'not-a-key'],
      ['audit', 'verify', bundle, '--bogus'],
      ['audit', 'verify', bundle, '--threads', 'many'],
      ['audit', 'frobnicate'],
    ]) {
      const result = sluice(args);
      expect([args.join(' '), result.status]).toEqual([args.join(' '), 2]);
      expect(result.stdout).toBe('');
    }
  });

  function writeNote(name: string, note: string): string {
    const path = join(dir, name);
    writeFileSync(path, note);
    return path;
  }
});
