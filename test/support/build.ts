import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
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

/**
 * Builds dist/ for the suites that run the real binary or server process, unless it is already
 * newer than every source file (so a run builds once, not once per suite).
 */
export function ensureBuilt(): void {
  const marker = join(REPO_ROOT, 'dist', 'src', 'main.js');
  const sources = Math.max(newestChange(join(REPO_ROOT, 'src')), newestChange(join(REPO_ROOT, 'migrations')));
  if (existsSync(marker) && statSync(marker).mtimeMs > sources) return;
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'pipe' });
}
