import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp } from '../../src/app.js';
import { DeliveryWorker } from '../../src/delivery/delivery-worker.js';
import { ApiKeyService } from '../../src/platform/auth/api-key.service.js';
import type { Scope } from '../../src/platform/auth/scopes.js';
import { loadConfig, type SluiceConfig } from '../../src/platform/config/config.js';
import type { CloudApiSimulator } from '../simulator/cloud-api-simulator.js';
import { createTestDatabase, type Dialect, type TestDatabase } from './databases.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SHIPPED_POLICIES = join(REPO_ROOT, 'policies');

export interface RunningApp {
  app: NestFastifyApplication;
  baseUrl: string;
  /** The bootstrap key: every scope. */
  apiKey: string;
  config: SluiceConfig;
  database: TestDatabase;
  /** Delivers every claimable outbox row now instead of waiting for the poll. */
  drainOutbox(): Promise<number>;
  /** `body`: sent as it is if a string or bytes, else as its JSON. */
  request(method: string, path: string, options?: { body?: unknown; headers?: Record<string, string>; key?: string | null }): Promise<TestResponse>;
  /** Stops this gateway and starts a new one on the same database, keys and settings. */
  restart(env?: Record<string, string>): Promise<RunningApp>;
  /** Starts a second replica on the same database, keys and settings (closing it leaves the database). */
  startReplica(env?: Record<string, string>): Promise<RunningApp>;
  close(): Promise<void>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests assert on arbitrary JSON shapes
}

export interface TestAppOptions {
  env?: Record<string, string>;
  worker?: 'on' | 'off';
  /** Sends through this Cloud API simulator (WHATSAPP_TRANSPORT=cloud-api) and points its webhooks at the gateway. */
  cloudApi?: CloudApiSimulator;
}

/**
 * Starts the real gateway on a random loopback port against a fresh database of the dialect.
 * The delivery worker polls as in production unless `worker: 'off'` (tests then drain by hand).
 */
export async function startTestApp(dialect: Dialect, options: TestAppOptions = {}): Promise<RunningApp> {
  const database = await createTestDatabase(dialect);
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-data-'));
  const apiKey = `test-${randomBytes(24).toString('hex')}`;
  const env: Record<string, string> = {
    SLUICE_BOOTSTRAP_KEY: apiKey,
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    POLICIES_DIR: SHIPPED_POLICIES,
    DELIVERY_WORKER: options.worker ?? 'off',
    DELIVERY_POLL_MS: '50',
    LOG_LEVEL: 'error',
    // The suites fire requests back to back with one key; the rate-limit tests set low limits.
    RATE_LIMIT_PER_SECOND: '100000',
    RATE_LIMIT_BURST: '100000',
    AUDIT_SIGNING_KEY: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    SLUICE_MASTER_KEY: randomBytes(32).toString('base64'),
    ...(database.config.type === 'sqlite' ? { SQLITE_PATH: database.config.path } : { DATABASE_URL: database.config.url }),
    ...options.cloudApi?.sluiceEnv(),
    ...options.env,
  };
  try {
    return await launch(env, database, dataDir, true, options.cloudApi);
  } catch (error) {
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

async function launch(env: Record<string, string>, database: TestDatabase, dataDir: string, ownsDatabase: boolean, cloudApi?: CloudApiSimulator): Promise<RunningApp> {
  const apiKey = env.SLUICE_BOOTSTRAP_KEY!;
  const config = loadConfig(env);
  const app = await createApp(config);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.getHttpServer().address() as { port: number };
  const baseUrl = `http://127.0.0.1:${address.port}`;
  if (cloudApi && ownsDatabase) cloudApi.webhookUrl = `${baseUrl}/v1/webhooks/whatsapp`;

  return {
    app,
    baseUrl,
    apiKey,
    config,
    database,
    drainOutbox: () => app.get(DeliveryWorker).drain(),
    async request(method, path, { body, headers = {}, key = apiKey } = {}) {
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(key !== null ? { authorization: `Bearer ${key}` } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' || body instanceof Uint8Array ? (body as string | Uint8Array<ArrayBuffer>) : JSON.stringify(body),
      });
      const text = await response.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: response.status, headers: response.headers, text, json };
    },
    async restart(overrides = {}) {
      await app.close();
      return launch({ ...env, ...overrides }, database, dataDir, ownsDatabase, cloudApi);
    },
    startReplica(overrides = {}) {
      return launch({ ...env, ...overrides }, database, dataDir, false, cloudApi);
    },
    async close() {
      await app.close();
      if (!ownsDatabase) return;
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Creates an API key with exactly these scopes the way `sluice keys create` does (ApiKeyService,
 * only the hash stored) and returns its secret.
 */
export async function createApiKey(sluice: RunningApp, scopes: readonly Scope[], name = `test ${scopes.join(' ')}`): Promise<string> {
  return (await sluice.app.get(ApiKeyService).create(name, scopes)).secret;
}
