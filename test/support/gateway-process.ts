import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { TestDatabase } from './databases.js';
import { eventually } from './eventually.js';
import { REPO_ROOT, SHIPPED_POLICIES } from './test-app.js';

/** What a gateway process needs to run against `database`: a random port, fresh keys, the shipped policies. */
export function gatewayEnv(database: TestDatabase, dataDir: string, apiKey: string, settings: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    POLICIES_DIR: SHIPPED_POLICIES,
    SLUICE_BOOTSTRAP_KEY: apiKey,
    AUDIT_SIGNING_KEY: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    SLUICE_MASTER_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: 'log',
    ...(database.config.type === 'sqlite' ? { SQLITE_PATH: database.config.path, DATABASE_URL: '' } : { DATABASE_URL: database.config.url }),
    ...settings,
  };
}

export interface GatewayProcess {
  server: ChildProcess;
  baseUrl: string;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** What it wrote to stderr alone so far. */
  errors(): string;
}

/**
 * Starts the built server (`node dist/src/main.js`) as an operator would, from `root` (the
 * repository, or a copy of what a deployment ships); resolves once it listens.
 */
export async function startGatewayProcess(env: NodeJS.ProcessEnv, root = REPO_ROOT): Promise<GatewayProcess> {
  const started = spawnGatewayProcess(env, root);
  const baseUrl = await eventually(() => /listening on (http:\/\/127\.0\.0\.1:\d+)\D/.exec(started.output())?.[1], 'the server to listen');
  return { ...started, baseUrl };
}

/** Starts the built server without waiting for it to listen (to catch it during start-up). */
export function spawnGatewayProcess(env: NodeJS.ProcessEnv, root = REPO_ROOT): Omit<GatewayProcess, 'baseUrl'> {
  const server = spawn(process.execPath, [join(root, 'dist', 'src', 'main.js')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let errors = '';
  server.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  server.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
    errors += chunk.toString('utf8');
  });
  return { server, output: () => output, errors: () => errors };
}
