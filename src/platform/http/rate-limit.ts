import { HttpException, HttpStatus } from '@nestjs/common';
import { Stackless } from './stackless.js';

export interface RateLimitSettings {
  /** Tokens added per second: the sustained request rate. */
  perSecond: number;
  /** Bucket size: how many requests may come at once after a quiet spell. */
  burst: number;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

const ALLOWED: RateDecision = Object.freeze({ allowed: true });

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms, from the clock). */
  at: number;
}

/**
 * One token bucket per caller, in this process's memory: each replica limits on its own, so N
 * replicas behind a load balancer let a caller through at up to N times the rate. Callers are
 * API key ids, authenticated first, so the map holds at most one bucket per stored key however
 * much traffic comes.
 */
export class TokenBucketLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly settings: RateLimitSettings,
    private readonly now: () => number = () => performance.now(),
  ) {}

  take(caller: string): RateDecision {
    const { perSecond, burst } = this.settings;
    const now = this.now();
    let bucket = this.buckets.get(caller);
    if (!bucket) this.buckets.set(caller, (bucket = { tokens: burst, at: now }));
    const tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
    // Updated in place: this runs on every authenticated request.
    bucket.at = now;
    if (tokens >= 1) {
      bucket.tokens = tokens - 1;
      return ALLOWED;
    }
    bucket.tokens = tokens;
    // Whole seconds (Retry-After has no fractions), rounded up so a retry on time succeeds.
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / perSecond)) };
  }
}

/**
 * 429, rendered as problem+json with a Retry-After header by the ProblemDetailsFilter. Made
 * without a stack trace (see withoutStackTrace): a throttled caller may send many.
 */
@Stackless
export class TooManyRequestsException extends HttpException {
  declare readonly retryAfterSeconds: number;

  constructor(retryAfterSeconds: number, settings: RateLimitSettings) {
    super(
      `This API key may make ${settings.perSecond} request(s) per second, in bursts of up to ${settings.burst}, on each sluice replica; retry after ${retryAfterSeconds} second(s)`,
      HttpStatus.TOO_MANY_REQUESTS,
    );
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
