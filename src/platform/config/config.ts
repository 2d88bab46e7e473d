import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

export type DatabaseConfig =
  | { type: 'sqlite'; path: string }
  | { type: 'postgres'; url: string };

export interface SluiceConfig {
  port: number;
  host: string;
  database: DatabaseConfig;
  dataDir: string;
  policiesDir: string;
  /** Reload the policies when a file in the folder changes (SIGHUP always reloads). */
  policiesWatch: boolean;
  /** Ed25519 private key that signs checkpoints; undefined means "generate and keep one in dataDir". */
  auditSigningKey: KeyObject | undefined;
  auditLogOrigin: string;
  /** 32-byte key that wraps per-subject keys; undefined means "generate and keep one in dataDir". */
  masterKey: Buffer | undefined;
  bootstrapKey: string | undefined;
  whatsappTransport: 'sandbox';
  deliveryPollMs: number;
  deliveryWorkerEnabled: boolean;
  /** How often the audit sequencer looks for entries nobody waited for (ms). */
  auditSequencePollMs: number;
  logLevel: 'error' | 'warn' | 'log' | 'debug' | 'verbose';
  /** Where media given by https URL may be fetched from (see policy/media-fetcher.ts). */
  mediaFetch: { hosts: string[]; allowPrivateAddresses: boolean; extraCa: string | undefined; timeoutMs: number };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['error', 'warn', 'log', 'debug', 'verbose'] as const;

/**
 * Reads sluice's configuration from the environment, collecting every problem before failing so
 * an operator fixes them all in one go.
 */
export function loadConfig(env: NodeJS.ProcessEnv, cwd = process.cwd()): SluiceConfig {
  const problems: string[] = [];
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));

  const port = integerIn(env.PORT ?? '3000', 0, 65535);
  if (port === undefined) problems.push(`PORT must be an integer from 0 to 65535, got "${env.PORT}"`);

  const host = env.HOST ?? '127.0.0.1';
  if (host.trim() === '') problems.push('HOST must not be empty');

  let database: DatabaseConfig = { type: 'sqlite', path: abs(env.SQLITE_PATH ?? 'data/sluice.db') };
  if (env.DATABASE_URL !== undefined && env.DATABASE_URL !== '') {
    let url: URL | undefined;
    try {
      url = new URL(env.DATABASE_URL);
    } catch {
      problems.push('DATABASE_URL is not a URL (expected postgres://user@host:port/database)');
    }
    if (url && url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      problems.push(`DATABASE_URL must use postgres:// or postgresql://, got "${url.protocol}//"`);
    }
    database = { type: 'postgres', url: env.DATABASE_URL };
  }

  let auditSigningKey: KeyObject | undefined;
  if (env.AUDIT_SIGNING_KEY) {
    try {
      auditSigningKey = createPrivateKey(env.AUDIT_SIGNING_KEY.replace(/\\n/g, '\n'));
      if (auditSigningKey.asymmetricKeyType !== 'ed25519') {
        problems.push(`AUDIT_SIGNING_KEY must be an Ed25519 private key, got ${auditSigningKey.asymmetricKeyType}`);
      }
    } catch {
      problems.push('AUDIT_SIGNING_KEY is not a PEM-encoded private key');
    }
  }

  let masterKey: Buffer | undefined;
  if (env.SLUICE_MASTER_KEY) {
    masterKey = Buffer.from(env.SLUICE_MASTER_KEY, 'base64');
    if (masterKey.length !== 32) problems.push('SLUICE_MASTER_KEY must be 32 bytes, base64-encoded');
  }

  if (database.type === 'postgres') {
    // Replicas share one log: a key generated per machine would make their checkpoints unverifiable.
    if (!env.AUDIT_SIGNING_KEY) problems.push('AUDIT_SIGNING_KEY is required with DATABASE_URL (replicas must share it)');
    if (!env.SLUICE_MASTER_KEY) problems.push('SLUICE_MASTER_KEY is required with DATABASE_URL (replicas must share it)');
  }

  const auditLogOrigin = env.AUDIT_LOG_ORIGIN ?? 'sluice.local/audit';
  if (!/^[\x21-\x7e]+$/.test(auditLogOrigin) || auditLogOrigin.includes('+')) {
    problems.push('AUDIT_LOG_ORIGIN must be printable ASCII without spaces or "+" (it names the signing key)');
  }

  const bootstrapKey = env.SLUICE_BOOTSTRAP_KEY || undefined;
  if (bootstrapKey !== undefined && bootstrapKey.length < 16) {
    problems.push('SLUICE_BOOTSTRAP_KEY must be at least 16 characters');
  }

  const transport = env.WHATSAPP_TRANSPORT ?? 'sandbox';
  if (transport !== 'sandbox') {
    problems.push(`WHATSAPP_TRANSPORT "${transport}" is not available in this build; use "sandbox"`);
  }

  const deliveryPollMs = integerIn(env.DELIVERY_POLL_MS ?? '250', 10, 60000);
  if (deliveryPollMs === undefined) problems.push('DELIVERY_POLL_MS must be an integer from 10 to 60000');

  const auditSequencePollMs = integerIn(env.AUDIT_SEQUENCE_POLL_MS ?? '100', 5, 60000);
  if (auditSequencePollMs === undefined) problems.push('AUDIT_SEQUENCE_POLL_MS must be an integer from 5 to 60000');

  const worker = env.DELIVERY_WORKER ?? 'on';
  if (worker !== 'on' && worker !== 'off') problems.push('DELIVERY_WORKER must be "on" or "off"');

  const policiesWatch = env.POLICIES_WATCH ?? 'false';
  if (policiesWatch !== 'true' && policiesWatch !== 'false') problems.push('POLICIES_WATCH must be "true" or "false"');

  const logLevel = (env.LOG_LEVEL ?? 'log') as SluiceConfig['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);

  const mediaHosts = (env.MEDIA_FETCH_HOSTS ?? 'fbcdn.net,fbsbx.com')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  if (mediaHosts.some((h) => !/^[a-z0-9.-]+$/.test(h) || h.startsWith('.'))) problems.push('MEDIA_FETCH_HOSTS must be host names separated by commas, e.g. fbcdn.net,fbsbx.com');
  const allowPrivate = env.MEDIA_FETCH_ALLOW_PRIVATE ?? 'false';
  if (allowPrivate !== 'true' && allowPrivate !== 'false') problems.push('MEDIA_FETCH_ALLOW_PRIVATE must be "true" or "false"');
  const fetchTimeoutMs = integerIn(env.MEDIA_FETCH_TIMEOUT_MS ?? '10000', 100, 120000);
  if (fetchTimeoutMs === undefined) problems.push('MEDIA_FETCH_TIMEOUT_MS must be an integer from 100 to 120000');
  let extraCa: string | undefined;
  if (env.MEDIA_FETCH_CA_FILE) {
    try {
      extraCa = readFileSync(abs(env.MEDIA_FETCH_CA_FILE), 'utf8');
      if (!extraCa.includes('-----BEGIN CERTIFICATE-----')) problems.push('MEDIA_FETCH_CA_FILE must hold PEM certificates');
    } catch {
      problems.push(`MEDIA_FETCH_CA_FILE cannot be read: ${env.MEDIA_FETCH_CA_FILE}`);
    }
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port: port!,
    host,
    database,
    dataDir: abs(env.DATA_DIR ?? 'data'),
    policiesDir: abs(env.POLICIES_DIR ?? 'policies'),
    policiesWatch: policiesWatch === 'true',
    auditSigningKey,
    auditLogOrigin,
    masterKey,
    bootstrapKey,
    whatsappTransport: 'sandbox',
    deliveryPollMs: deliveryPollMs!,
    deliveryWorkerEnabled: worker === 'on',
    auditSequencePollMs: auditSequencePollMs!,
    logLevel,
    mediaFetch: { hosts: mediaHosts, allowPrivateAddresses: allowPrivate === 'true', extraCa, timeoutMs: fetchTimeoutMs! },
  };
}

function integerIn(text: string, min: number, max: number): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

export const SLUICE_CONFIG = Symbol('SLUICE_CONFIG');
