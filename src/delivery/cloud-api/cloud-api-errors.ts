import type { SendFailure } from '../whatsapp-transport.js';

/**
 * Cloud API error codes worth another attempt: rate limits (the throughput limit, the per-pair
 * limit, the app and account limits) and WhatsApp's own temporary trouble. Codes about the
 * business account (ACCOUNT_ERROR_CODES) are retried too, without counting. Any other error
 * code is final for the message: invalid parameter (100), unsupported type (131051), outside
 * the 24-hour window (131047), undeliverable (131026), template problems (132xxx), ... A retry
 * would be refused the same way.
 */
export const RETRYABLE_ERROR_CODES: ReadonlyMap<number, string> = new Map([
  [1, 'API unknown error'],
  [2, 'API service temporarily unavailable'],
  [4, 'app API rate limit'],
  [80007, 'WhatsApp Business Account rate limit'],
  [130429, 'throughput rate limit'],
  [131000, 'something went wrong'],
  [131016, 'service unavailable'],
  [131056, 'business/consumer pair rate limit'],
  [131057, 'account in maintenance mode'],
]);

/**
 * Cloud API error codes that are about the business account or the app, not the message: until
 * an operator renews the token, pays or appeals, every message would be refused the same way,
 * and each would be lost if it counted. The worker pauses and the messages wait.
 */
export const ACCOUNT_ERROR_CODES: ReadonlyMap<number, string> = new Map([
  [0, 'authentication failed'],
  [3, 'capability or permission missing'],
  [10, 'permission denied'],
  [190, 'access token invalid or expired'],
  [200, 'permission missing'],
  [368, 'temporarily blocked for policy violations'],
  [131005, 'access denied'],
  [131031, 'business account locked'],
  [131042, 'business eligibility: payment issue'],
  [131045, 'phone number not registered (certificate)'],
  [133010, 'phone number not registered'],
]);

export interface GraphError {
  code: number;
  subcode?: number;
  fbtraceId?: string;
}

/** The `error` object of a Graph API error response, when the body is one. */
export function graphError(body: unknown): GraphError | undefined {
  const error = (body as { error?: unknown } | null)?.error as Record<string, unknown> | undefined;
  if (typeof error !== 'object' || error === null || !Number.isInteger(error.code)) return undefined;
  return {
    code: error.code as number,
    ...(Number.isInteger(error.error_subcode) ? { subcode: error.error_subcode as number } : {}),
    ...(typeof error.fbtrace_id === 'string' && /^[\w-]{1,64}$/.test(error.fbtrace_id) ? { fbtraceId: error.fbtrace_id } : {}),
  };
}

/**
 * Maps a non-2xx answer to a failure. A 4xx (429 included) is WhatsApp refusing this copy of the
 * message (`delivered: no`); a 5xx may come after it was processed (a gateway that lost
 * WhatsApp's answer, "something went wrong" from WhatsApp itself), so whether this copy went out
 * is `unknown`. A known error code decides whether to retry; otherwise (an unknown code, or no
 * Graph error body at all: a proxy's page) the HTTP status does: 429 and 5xx are worth
 * retrying, other statuses are not.
 */
export function failureOfErrorResponse(status: number, body: unknown): SendFailure {
  const error = graphError(body);
  const delivered = status >= 500 ? 'unknown' : 'no';
  if (!error) return { code: `http.${status}`, retryable: status === 429 || status >= 500, delivered };
  const accountProblem = ACCOUNT_ERROR_CODES.has(error.code);
  return {
    code: `whatsapp.${error.code}`,
    retryable: accountProblem || RETRYABLE_ERROR_CODES.has(error.code) || status === 429 || status >= 500,
    delivered,
    ...(accountProblem ? { accountProblem: true as const } : {}),
    ...(error.subcode !== undefined ? { subcode: error.subcode } : {}),
    ...(error.fbtraceId ? { fbtraceId: error.fbtraceId } : {}),
  };
}

/** Connection-level codes that mean the request never reached WhatsApp. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Maps a request that got no answer. A timeout or a connection lost mid-request may have been
 * processed by WhatsApp: its outcome is unknown, and retrying it may send a second copy
 * (at-least-once; WhatsApp has no idempotency key).
 */
export function failureOfTransportError(error: unknown): SendFailure {
  if ((error as Error | undefined)?.name === 'TimeoutError') return { code: 'transport.timeout', retryable: true, delivered: 'unknown' };
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && NOT_SENT_CODES.has(code)) return { code: 'transport.unreachable', retryable: true, delivered: 'no' };
  return { code: 'transport.connection_lost', retryable: true, delivered: 'unknown' };
}
