import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './test-app.js';

function newestChange(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestChange(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function isBuilt(): boolean {
  const marker = join(REPO_ROOT, 'dist', 'src', 'main.js');
  const sources = Math.max(newestChange(join(REPO_ROOT, 'src')), newestChange(join(REPO_ROOT, 'migrations')));
  return existsSync(marker) && statSync(marker).mtimeMs > sources;
}

const LOCK = join(REPO_ROOT, 'dist', '.building');
const LOCK_STALE_MS = 120_000;

/**
 * Builds dist/ for the suites that run the real binary or server process, unless it is already
 * newer than every source file (so a run builds once, not once per suite). Jest runs suites in
 * two workers: one builds while the other waits, so that no process starts from half-written files.
 */
export function ensureBuilt(): void {
  if (isBuilt()) return;
  mkdirSync(join(REPO_ROOT, 'dist'), { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const held = statSync(LOCK, { throwIfNoEntry: false });
      // A lock left by a killed run is not waited for forever.
      if (held && Date.now() - held.mtimeMs > LOCK_STALE_MS) rmSync(LOCK, { recursive: true, force: true });
      else if (held) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    if (!isBuilt()) execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'pipe' });
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}
