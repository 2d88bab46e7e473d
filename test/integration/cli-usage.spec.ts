import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../support/build.js';
import { REPO_ROOT, SHIPPED_POLICIES } from '../support/test-app.js';

/**
 * What the person at the command line got wrong is named in a line and exits 2, as every usage
 * error does; exit 1 stays for a failing policy, test or verification. No stack traces.
 */
describe('npx sluice, given something it cannot use', () => {
  let dir: string;

  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'sluice-usage-'));
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function sluice(args: string[], env: NodeJS.ProcessEnv = {}): { status: number; stdout: string; stderr: string } {
    const base = { PATH: process.env.PATH, POLICIES_DIR: SHIPPED_POLICIES, DATA_DIR: join(dir, 'data'), SQLITE_PATH: join(dir, 'never-created.db') };
    const result = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'sluice.js'), ...args], { cwd: dir, encoding: 'utf8', env: { ...base, ...env } });
    return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
  }

  const noStack = (stderr: string) => expect(stderr).not.toMatch(/\n\s+at /);

  it.each([
    [['policy', 'lint', '--bogus'], "Unknown option '--bogus'"],
    [['policy', 'lint', '--dir'], "Option '--dir <value>' argument missing"],
    [['report', 'ropa', '--from', '2026-01-01'], "Unknown option '--from'"],
    [['keys', 'create', '--scopes', 'shares:read', '--extra'], "Unknown option '--extra'"],
  ])('refuses an option it does not know or that lacks its value: %j', (args, message) => {
    const result = sluice(args);
    expect([result.status, result.stderr]).toEqual([2, `${message} (npx sluice lists every command and its options)\n`]);
  });

  it('names a file it cannot read', () => {
    const missing = join(dir, 'missing-post.json');
    const result = sluice(['policy', 'explain', 'frontline-updates', '--post', missing]);
    expect([result.status, result.stderr]).toEqual([2, `${missing}: no such file or folder\n`]);
  });

  it('names a post file that is not JSON', () => {
    const post = join(dir, 'post.json');
    writeFileSync(post, '{"message": ');
    const result = sluice(['policy', 'explain', 'frontline-updates', '--post', post]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`^${post.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not JSON \\(`));
    noStack(result.stderr);
  });

  it('names a key or kept checkpoint file that is not there, rather than calling it malformed', () => {
    const bundle = join(dir, 'bundle.ndjson');
    writeFileSync(bundle, '');
    const key = join(dir, 'missing.vkey');
    const checkpoint = join(dir, 'missing.checkpoint');
    const keyMissing = sluice(['audit', 'verify', bundle, '--public-key', key]);
    expect([keyMissing.status, keyMissing.stderr]).toEqual([2, `--public-key ${key}: no such file\n`]);
    const checkpointMissing = sluice(['audit', 'verify', bundle, '--trusted-checkpoint', checkpoint]);
    expect([checkpointMissing.status, checkpointMissing.stderr]).toEqual([2, `--trusted-checkpoint ${checkpoint}: no such file\n`]);
  });

  it('names each option of report ropa it cannot take', () => {
    const result = sluice(['report', 'ropa', '--since', 'yesterday', '--format', 'xml']);
    expect([result.status, result.stderr]).toEqual([2, 'report ropa: --since yesterday is not a date (2026-01-01, or a date and time); --format xml is neither md nor json\n']);
    const backwards = sluice(['report', 'ropa', '--since', '2026-02-01', '--until', '2026-01-01']);
    expect([backwards.status, backwards.stderr]).toEqual([2, 'report ropa: --since must come before --until\n']);
  });

  it('refuses a folder given as the bundle to verify', () => {
    const result = sluice(['audit', 'verify', dir]);
    expect([result.status, result.stderr]).toEqual([2, `${dir}: not a file (a bundle is the one file audit export wrote)\n`]);
  });

  it('reports and exports nothing from a database that is not there, and does not create one', () => {
    for (const args of [['report', 'ropa'], ['audit', 'export']]) {
      const result = sluice(args);
      expect([args.join(' '), result.status]).toEqual([args.join(' '), 2]);
      expect(result.stderr).toContain(`no database at ${join(dir, 'never-created.db')}`);
      expect(result.stdout).toBe('');
    }
    expect(existsSync(join(dir, 'never-created.db'))).toBe(false);
  });

  it('refuses a database whose schema has migrations pending', () => {
    const empty = join(dir, 'empty.db');
    writeFileSync(empty, '');
    const result = sluice(['audit', 'export'], { SQLITE_PATH: empty });
    expect([result.status, result.stderr]).toEqual([2, 'audit export: the database has migrations pending: run npx sluice db migrate (or start the server) first\n']);
    // Finding out created nothing in it (TypeORM's own check would have made its migrations table).
    const db = new Database(empty, { readonly: true });
    try {
      expect(db.prepare('SELECT name FROM sqlite_master').all()).toEqual([]);
    } finally {
      db.close();
    }
  });

  it('names the policies that do not load', () => {
    const result = sluice(['report', 'ropa'], { POLICIES_DIR: join(dir, 'no-policies-here') });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('the policies folder does not exist');
    noStack(result.stderr);
  });

  it('creates an API key given only its scopes, as the contract shows', () => {
    const result = sluice(['keys', 'create', '--scopes', 'shares:read'], { SQLITE_PATH: join(dir, 'keys.db') });
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^created key_[0-9a-f]+ \(shares:read\)\nsecret, shown only now: slk_/);
  });
});
