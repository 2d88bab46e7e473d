/**
 * Errors that say the database cannot serve now, not that the request or sluice is wrong: no free
 * pooled connection within the wait, a connection refused, lost or timed out, PostgreSQL shutting
 * down or out of connections, SQLite's file locked by another process past its busy timeout. Such
 * a request is answered 503 with Retry-After (the transaction rolled back: nothing was written),
 * so that a client or load balancer tries again, instead of 500, which says sluice is broken.
 */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'EPIPE']);

/**
 * PostgreSQL SQLSTATEs: connection exceptions (08), insufficient resources (53: too many
 * connections, disk full, out of memory), operator intervention (57: shutdown, cannot connect
 * now, a cancelled statement), and the transaction conflicts TransactionRunner retries (40001,
 * 40P01) once its tries are spent.
 */
const POSTGRES_CLASSES = ['08', '53', '57'];
const POSTGRES_CODES = new Set(['40001', '40P01', '55P03']);

/** better-sqlite3's codes, with their extended forms (SQLITE_BUSY_TIMEOUT, SQLITE_IOERR_FSYNC, ...). */
const SQLITE_PREFIXES = ['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_FULL', 'SQLITE_IOERR'];

/** node-postgres and pg-pool raise these without a code. */
const POSTGRES_CLIENT_MESSAGES = [
  'timeout exceeded when trying to connect',
  'Connection terminated',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
];

export function isDatabaseUnavailable(error: unknown): boolean {
  // TypeORM wraps a driver's error (QueryFailedError.driverError); pg-pool chains its cause.
  // Not `instanceof Error`: Node's own errors (a refused socket) may come from another realm.
  let cause = error as { code?: unknown; message?: unknown; driverError?: unknown; cause?: unknown } | null | undefined;
  for (let depth = 0; typeof cause === 'object' && cause !== null && depth < 4; depth++) {
    const { code, message } = cause;
    if (typeof code === 'string' && unavailableCode(code)) return true;
    if (typeof message === 'string' && POSTGRES_CLIENT_MESSAGES.some((start) => message.startsWith(start))) return true;
    cause = (cause.driverError ?? cause.cause) as typeof cause;
  }
  return false;
}

function unavailableCode(code: string): boolean {
  if (NETWORK_CODES.has(code) || POSTGRES_CODES.has(code)) return true;
  if (code.startsWith('SQLITE_')) return SQLITE_PREFIXES.some((prefix) => code === prefix || code.startsWith(`${prefix}_`));
  return code.length === 5 && POSTGRES_CLASSES.includes(code.slice(0, 2));
}
