import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { domainToASCII } from 'node:url';

export type DatabaseConfig =
  | { type: 'sqlite'; path: string }
  | {
      type: 'postgres';
      url: string;
      /** Connections in this replica's pool. */
      poolSize: number;
      /** The longest a request waits to connect, or for a free pooled connection, before it is answered 503. */
      connectTimeoutMs: number;
    };

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
  whatsappTransport: WhatsAppTransportName;
  whatsapp: WhatsAppConfig;
  deliveryPollMs: number;
  deliveryWorkerEnabled: boolean;
  /** Attempts per message before it ends as failed (retryable errors only; a final error ends it at once). */
  deliveryMaxAttempts: number;
  /** First retry delay; each further retry doubles it (with jitter, capped at an hour). */
  deliveryRetryBaseMs: number;
  /** How long a worker holds a claimed message; a dead worker's messages are taken over after it. */
  deliveryLeaseMs: number;
  /** How long a worker pauses after WhatsApp refused the business account itself (an expired token, a blocked account). */
  deliveryAccountPauseMs: number;
  /**
   * How long a share's minimised photo or video is kept after a message with it was sent, while
   * WhatsApp may still report that copy failed with a retryable code (then it is sent again).
   */
  mediaHoldAfterSendMs: number;
  /** How often the audit sequencer looks for entries nobody waited for (ms). */
  auditSequencePollMs: number;
  /** Group commits of share decisions that may run at once (PostgreSQL only; SQLite has one writer). */
  shareCommitsInFlight: number;
  logLevel: 'error' | 'warn' | 'log' | 'debug' | 'verbose';
  /** Where media given by https URL may be fetched from (see policy/media-fetcher.ts). */
  mediaFetch: { hosts: MediaFetchHost[]; allowPrivateAddresses: boolean; extraCa: string | undefined; timeoutMs: number };
  /** Requests per API key: a token bucket per key on each replica (see platform/http/rate-limit.ts). */
  rateLimit: { perSecond: number; burst: number };
  /**
   * Failed authentications (an API key that is not stored) per client address: a token bucket per
   * address (an IPv6 one by its /64, and by its /48 at 8 times the limit) on each replica, checked
   * before the key is looked up (see platform/auth/request-authenticator.ts).
   */
  authFailureLimit: { perMinute: number; burst: number };
  /** Browser origins allowed to call the API (CORS); empty means CORS stays closed. */
  corsOrigins: string[];
  /** Strict-Transport-Security; maxAge 0 sends no header. */
  hsts: { maxAge: number; includeSubDomains: boolean };
  /** The longest a client may take to send a whole request (headers and body). */
  httpRequestTimeoutMs: number;
  /** After SIGTERM, how long open connections may hold shutdown up before they are closed. */
  shutdownGraceMs: number;
  /** After SIGTERM, the longest the whole shutdown may take before the process exits with status 1. */
  shutdownTimeoutMs: number;
}

export type WhatsAppTransportName = 'sandbox' | 'cloud-api';

/** A host (and its subdomains) media may be fetched from, on one port. */
export interface MediaFetchHost {
  name: string;
  port: number;
}

/** The WhatsApp Business Platform (Cloud API) account sluice sends from. */
export interface CloudApiConfig {
  /** e.g. https://graph.facebook.com (no trailing slash). */
  apiBase: string;
  /** Graph API version, e.g. v23.0. */
  apiVersion: string;
  phoneNumberId: string;
  accessToken: string;
  /** Messages per second for this phone number, across all replicas. */
  sendRate: number;
  /** The longest one request (media upload or message) may take before its outcome counts as unknown. */
  timeoutMs: number;
}

export interface WhatsAppConfig {
  /** Present exactly when WHATSAPP_TRANSPORT=cloud-api. */
  cloudApi: CloudApiConfig | undefined;
  /** Signs webhook deliveries (X-Hub-Signature-256); without it every webhook POST is refused. */
  appSecret: string | undefined;
  /** Answers the webhook verification handshake; without it every handshake is refused. */
  verifyToken: string | undefined;
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
    const poolSize = integerIn(env.DATABASE_POOL_SIZE ?? '10', 1, 1000);
    if (poolSize === undefined) problems.push(`DATABASE_POOL_SIZE must be an integer from 1 to 1000, got "${env.DATABASE_POOL_SIZE}"`);
    const connectTimeoutMs = integerIn(env.DATABASE_CONNECT_TIMEOUT_MS ?? '10000', 100, 600_000);
    if (connectTimeoutMs === undefined) problems.push(`DATABASE_CONNECT_TIMEOUT_MS must be an integer from 100 to 600000, got "${env.DATABASE_CONNECT_TIMEOUT_MS}"`);
    database = { type: 'postgres', url: env.DATABASE_URL, poolSize: poolSize ?? 10, connectTimeoutMs: connectTimeoutMs ?? 10_000 };
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
  if (transport !== 'sandbox' && transport !== 'cloud-api') {
    problems.push(`WHATSAPP_TRANSPORT must be "sandbox" or "cloud-api", got "${transport}"`);
  }
  const whatsapp = whatsAppConfig(env, transport === 'cloud-api', problems);

  const deliveryPollMs = integerIn(env.DELIVERY_POLL_MS ?? '250', 10, 60000);
  if (deliveryPollMs === undefined) problems.push('DELIVERY_POLL_MS must be an integer from 10 to 60000');

  const auditSequencePollMs = integerIn(env.AUDIT_SEQUENCE_POLL_MS ?? '100', 5, 60000);
  if (auditSequencePollMs === undefined) problems.push('AUDIT_SEQUENCE_POLL_MS must be an integer from 5 to 60000');

  const shareCommitsInFlight = integerIn(env.SHARE_COMMITS_IN_FLIGHT ?? '1', 1, 8);
  if (shareCommitsInFlight === undefined) problems.push('SHARE_COMMITS_IN_FLIGHT must be an integer from 1 to 8');
  else if (shareCommitsInFlight > 1 && database.type !== 'postgres') problems.push('SHARE_COMMITS_IN_FLIGHT above 1 needs PostgreSQL (DATABASE_URL): SQLite writes one transaction at a time');

  const maxAttempts = integerIn(env.DELIVERY_MAX_ATTEMPTS ?? '6', 1, 50);
  if (maxAttempts === undefined) problems.push('DELIVERY_MAX_ATTEMPTS must be an integer from 1 to 50');
  const retryBaseMs = integerIn(env.DELIVERY_RETRY_BASE_MS ?? '2000', 10, 3_600_000);
  if (retryBaseMs === undefined) problems.push('DELIVERY_RETRY_BASE_MS must be an integer from 10 to 3600000');
  const accountPauseMs = integerIn(env.DELIVERY_ACCOUNT_PAUSE_MS ?? '60000', 10, 3_600_000);
  if (accountPauseMs === undefined) problems.push('DELIVERY_ACCOUNT_PAUSE_MS must be an integer from 10 to 3600000');
  const leaseMs = integerIn(env.DELIVERY_LEASE_MS ?? '30000', 1000, 3_600_000);
  if (leaseMs === undefined) problems.push('DELIVERY_LEASE_MS must be an integer from 1000 to 3600000');
  // A claim must outlive the slowest attempt (pacing, media upload, message), or a second worker
  // could take over a message that is still being sent and send it again.
  const slowestAttemptMs = whatsapp.cloudApi ? 2 * whatsapp.cloudApi.timeoutMs + 3000 : 0;
  if (leaseMs !== undefined && leaseMs < slowestAttemptMs) {
    problems.push(`DELIVERY_LEASE_MS must be at least 2 x WHATSAPP_TIMEOUT_MS + 3000 (${slowestAttemptMs}), so a claim outlives the slowest attempt`);
  }

  const mediaHoldAfterSendMs = integerIn(env.MEDIA_HOLD_AFTER_SEND_MS ?? '900000', 0, 86_400_000);
  if (mediaHoldAfterSendMs === undefined) problems.push('MEDIA_HOLD_AFTER_SEND_MS must be an integer from 0 to 86400000');

  const worker = env.DELIVERY_WORKER ?? 'on';
  if (worker !== 'on' && worker !== 'off') problems.push('DELIVERY_WORKER must be "on" or "off"');

  const policiesWatch = env.POLICIES_WATCH ?? 'false';
  if (policiesWatch !== 'true' && policiesWatch !== 'false') problems.push('POLICIES_WATCH must be "true" or "false"');

  const logLevel = (env.LOG_LEVEL ?? 'log') as SluiceConfig['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);

  const mediaHostEntries = (env.MEDIA_FETCH_HOSTS ?? 'fbcdn.net,fbsbx.com')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  const mediaHosts: MediaFetchHost[] = [];
  const badMediaHosts: string[] = [];
  const partialIpv4MediaHosts: string[] = [];
  for (const entry of mediaHostEntries) {
    const host = mediaFetchHost(entry);
    if (!host) badMediaHosts.push(entry);
    // A URL's host is never such a name: the entry would allow nothing, or was meant as a range.
    else if (endsInNumber(host.name) && !isIPv4(host.name)) partialIpv4MediaHosts.push(entry);
    else mediaHosts.push(host);
  }
  if (badMediaHosts.length > 0) {
    problems.push(`MEDIA_FETCH_HOSTS must be host names, each with an optional port from 1 to 65535, separated by commas, e.g. fbcdn.net,cdn.example.com:8443; not one: ${badMediaHosts.join(', ')}`);
  }
  if (partialIpv4MediaHosts.length > 0) {
    problems.push(
      `MEDIA_FETCH_HOSTS entries that end in a number are IPv4 addresses to a URL, so must be whole ones as URLs write them (four numbers from 0 to 255 without leading zeros, e.g. 192.0.2.10), each allowing that address only; not one: ${partialIpv4MediaHosts.join(', ')}`,
    );
  }
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

  const rateLimit = { perSecond: integerIn(env.RATE_LIMIT_PER_SECOND ?? '20', 1, 1_000_000), burst: integerIn(env.RATE_LIMIT_BURST ?? '40', 1, 1_000_000) };
  if (rateLimit.perSecond === undefined) problems.push('RATE_LIMIT_PER_SECOND must be an integer from 1 to 1000000 (requests per second per API key)');
  if (rateLimit.burst === undefined) problems.push('RATE_LIMIT_BURST must be an integer from 1 to 1000000 (requests an API key may make at once)');
  const authFailureLimit = { perMinute: integerIn(env.AUTH_FAILURES_PER_MINUTE ?? '30', 1, 1_000_000), burst: integerIn(env.AUTH_FAILURE_BURST ?? '20', 1, 1_000_000) };
  if (authFailureLimit.perMinute === undefined) problems.push('AUTH_FAILURES_PER_MINUTE must be an integer from 1 to 1000000 (requests with an invalid API key per minute per client address)');
  if (authFailureLimit.burst === undefined) problems.push('AUTH_FAILURE_BURST must be an integer from 1 to 1000000 (requests with an invalid API key a client address may make at once)');
  const corsOrigins = (env.CORS_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean);
  const badOrigins = corsOrigins.filter((o) => !isOrigin(o));
  if (badOrigins.length > 0) problems.push(`CORS_ORIGINS must be origins separated by commas, e.g. https://intranet.example.com; not an origin: ${badOrigins.join(', ')}`);
  const hstsMaxAge = integerIn(env.HSTS_MAX_AGE ?? '31536000', 0, 1_000_000_000);
  if (hstsMaxAge === undefined) problems.push('HSTS_MAX_AGE must be an integer number of seconds from 0 (no header) to 1000000000');
  const hstsSubdomains = env.HSTS_INCLUDE_SUBDOMAINS ?? 'false';
  if (hstsSubdomains !== 'true' && hstsSubdomains !== 'false') problems.push('HSTS_INCLUDE_SUBDOMAINS must be "true" or "false"');

  const httpRequestTimeoutMs = integerIn(env.HTTP_REQUEST_TIMEOUT_MS ?? '30000', 1000, 600_000);
  if (httpRequestTimeoutMs === undefined) problems.push('HTTP_REQUEST_TIMEOUT_MS must be an integer from 1000 to 600000');
  const shutdownGraceMs = integerIn(env.SHUTDOWN_GRACE_MS ?? '20000', 1000, 600_000);
  if (shutdownGraceMs === undefined) problems.push('SHUTDOWN_GRACE_MS must be an integer from 1000 to 600000');
  const shutdownTimeoutMs = integerIn(env.SHUTDOWN_TIMEOUT_MS ?? '25000', 1000, 3_600_000);
  if (shutdownTimeoutMs === undefined) problems.push('SHUTDOWN_TIMEOUT_MS must be an integer from 1000 to 3600000');
  // The requests and connections given the grace period still need their decisions recorded, the
  // last sends and the database closed after it.
  else if (shutdownGraceMs !== undefined && shutdownTimeoutMs <= shutdownGraceMs) problems.push(`SHUTDOWN_TIMEOUT_MS must be greater than SHUTDOWN_GRACE_MS (${shutdownGraceMs})`);

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
    whatsappTransport: transport as WhatsAppTransportName,
    whatsapp,
    deliveryPollMs: deliveryPollMs!,
    deliveryWorkerEnabled: worker === 'on',
    deliveryMaxAttempts: maxAttempts!,
    deliveryRetryBaseMs: retryBaseMs!,
    deliveryLeaseMs: leaseMs!,
    deliveryAccountPauseMs: accountPauseMs!,
    mediaHoldAfterSendMs: mediaHoldAfterSendMs!,
    auditSequencePollMs: auditSequencePollMs!,
    shareCommitsInFlight: shareCommitsInFlight!,
    logLevel,
    mediaFetch: { hosts: mediaHosts, allowPrivateAddresses: allowPrivate === 'true', extraCa, timeoutMs: fetchTimeoutMs! },
    rateLimit: { perSecond: rateLimit.perSecond!, burst: rateLimit.burst! },
    authFailureLimit: { perMinute: authFailureLimit.perMinute!, burst: authFailureLimit.burst! },
    corsOrigins,
    hsts: { maxAge: hstsMaxAge!, includeSubDomains: hstsSubdomains === 'true' },
    httpRequestTimeoutMs: httpRequestTimeoutMs!,
    shutdownGraceMs: shutdownGraceMs!,
    shutdownTimeoutMs: shutdownTimeoutMs!,
  };
}

/**
 * `host` or `host:port`; without a port only https's own, 443, so a URL cannot reach any other
 * service of an allowed host. No IPv6 literal ([::1]:8443): media are not fetched from one.
 */
function mediaFetchHost(entry: string): MediaFetchHost | undefined {
  const parts = /^([a-z0-9-][a-z0-9.-]*)(?::(\d+))?$/.exec(entry);
  if (!parts) return undefined;
  const port = parts[2] === undefined ? 443 : integerIn(parts[2], 1, 65535);
  // A label that is not valid punycode (xn--a) is no host a URL can name: it would allow nothing.
  if (!endsInNumber(parts[1]) && domainToASCII(parts[1]) !== parts[1]) return undefined;
  return port === undefined ? undefined : { name: parts[1], port };
}

/**
 * Whether a URL reads `name` as an IPv4 address (the WHATWG URL standard's "ends in a number"):
 * 0.0.1 is 0.0.0.1 there, 0x7f.1 is 127.0.0.1, and cdn.123 no host at all.
 */
function endsInNumber(name: string): boolean {
  const labels = name.split('.');
  if (labels.length > 1 && labels.at(-1) === '') labels.pop();
  return /^(?:\d+|0x[0-9a-f]*)$/.test(labels.at(-1)!);
}

/** An origin as a browser sends it: scheme, host and port only (https://intranet.example.com). */
function isOrigin(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === text;
  } catch {
    return false;
  }
}

/** The Cloud API settings are required with the cloud-api transport and ignored otherwise; the webhook secrets work with either. */
function whatsAppConfig(env: NodeJS.ProcessEnv, cloudApi: boolean, problems: string[]): WhatsAppConfig {
  const appSecret = env.WHATSAPP_APP_SECRET || undefined;
  const verifyToken = env.WHATSAPP_VERIFY_TOKEN || undefined;
  if (appSecret !== undefined && appSecret.length < 16) problems.push('WHATSAPP_APP_SECRET must be at least 16 characters (the Meta app secret)');
  if (verifyToken !== undefined && !/^[\x21-\x7e]{8,256}$/.test(verifyToken)) {
    problems.push('WHATSAPP_VERIFY_TOKEN must be 8 to 256 visible ASCII characters');
  }
  if (!cloudApi) return { cloudApi: undefined, appSecret, verifyToken };

  const required = 'is required with WHATSAPP_TRANSPORT=cloud-api';
  const apiBase = (env.WHATSAPP_API_BASE ?? 'https://graph.facebook.com').replace(/\/+$/, '');
  let base: URL | undefined;
  try {
    base = new URL(apiBase);
  } catch {
    problems.push(`WHATSAPP_API_BASE is not a URL: "${apiBase}"`);
  }
  // The access token travels with every request: plain HTTP only to this machine (a simulator).
  if (base && base.protocol !== 'https:' && !(base.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(base.hostname))) {
    problems.push('WHATSAPP_API_BASE must use https:// (http:// only for 127.0.0.1, [::1] or localhost)');
  }
  if (base && (base.search !== '' || base.hash !== '' || base.username !== '')) problems.push('WHATSAPP_API_BASE must not carry a query, fragment or credentials');
  const apiVersion = env.WHATSAPP_API_VERSION ?? 'v23.0';
  if (!/^v\d{1,3}\.\d{1,3}$/.test(apiVersion)) problems.push(`WHATSAPP_API_VERSION must look like v23.0, got "${apiVersion}"`);
  const phoneNumberId = env.WHATSAPP_PHONE_NUMBER_ID ?? '';
  if (phoneNumberId === '') problems.push(`WHATSAPP_PHONE_NUMBER_ID ${required} (the id of the sending phone number)`);
  else if (!/^\d{1,30}$/.test(phoneNumberId)) problems.push('WHATSAPP_PHONE_NUMBER_ID must be the numeric id of the phone number (not the number itself)');
  const accessToken = env.WHATSAPP_ACCESS_TOKEN ?? '';
  if (accessToken === '') problems.push(`WHATSAPP_ACCESS_TOKEN ${required}`);
  else if (!/^[\x21-\x7e]{16,2048}$/.test(accessToken)) problems.push('WHATSAPP_ACCESS_TOKEN must be 16 to 2048 visible ASCII characters');
  if (appSecret === undefined) problems.push(`WHATSAPP_APP_SECRET ${required} (webhook signatures)`);
  if (verifyToken === undefined) problems.push(`WHATSAPP_VERIFY_TOKEN ${required} (webhook verification handshake)`);
  const sendRate = integerIn(env.WHATSAPP_SEND_RATE ?? '80', 1, 100_000);
  if (sendRate === undefined) problems.push('WHATSAPP_SEND_RATE must be an integer from 1 to 100000 (messages per second for the phone number)');
  const timeoutMs = integerIn(env.WHATSAPP_TIMEOUT_MS ?? '10000', 100, 120_000);
  if (timeoutMs === undefined) problems.push('WHATSAPP_TIMEOUT_MS must be an integer from 100 to 120000');
  return {
    cloudApi: { apiBase, apiVersion, phoneNumberId, accessToken, sendRate: sendRate ?? 80, timeoutMs: timeoutMs ?? 10000 },
    appSecret,
    verifyToken,
  };
}

function integerIn(text: string, min: number, max: number): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

export const SLUICE_CONFIG = Symbol('SLUICE_CONFIG');
