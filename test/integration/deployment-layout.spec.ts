import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../support/build.js';
import { REPO_ROOT } from '../support/test-app.js';

/**
 * A deployment ships the build, not the sources: package.json, dist/, schemas/, policies/ and the
 * installed node_modules. Whatever the gateway reads at run time must be in those.
 */
describe('a deployment without src/', () => {
  let dir: string;

  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'sluice-deployed-'));
    for (const part of ['package.json', 'dist', 'schemas', 'policies']) cpSync(join(REPO_ROOT, part), join(dir, part), { recursive: true });
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has no sources to fall back on', () => {
    expect(existsSync(join(dir, 'src'))).toBe(false);
  });

  it("passes the shipped policy's tests, names of people without consent cut by the ordinary-word list it ships", () => {
    const result = spawnSync(process.execPath, [join(dir, 'dist', 'src', 'cli', 'main.js'), 'policy', 'test', '--dir', join(dir, 'policies')], {
      cwd: dir,
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
    });
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    expect(result.stdout).toMatch(/^\d+ passed, 0 failed$/m);
  });
});
