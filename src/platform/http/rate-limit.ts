import { HttpException, HttpStatus } from '@nestjs/common';
import { Stackless } from './stackless.js';

export interface RateLimitSettings {
  /** Tokens added per second (a fraction for limits per minute): the sustained request rate. */
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
 * replicas behind a load balancer let a caller through at up to N times the rate. Callers that
 * cannot multiply (API key ids, authenticated first) need no bound on the map; callers anyone can
 * make up (client addresses) get `maxCallers`, see add().
 */
export class TokenBucketLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxCallers: number;
  private readonly now: () => number;

  constructor(
    private readonly settings: RateLimitSettings,
    options: { maxCallers?: number; now?: () => number } = {},
  ) {
    this.maxCallers = options.maxCallers ?? Infinity;
    this.now = options.now ?? (() => performance.now());
  }

  take(caller: string): RateDecision {
    const now = this.now();
    let bucket = this.buckets.get(caller);
    if (!bucket) bucket = this.add(caller, now);
    else if (this.maxCallers !== Infinity) {
      // Moved to the end of the map's order, so that the first entry is the least recently used.
      this.buckets.delete(caller);
      this.buckets.set(caller, bucket);
    }
    const tokens = this.tokensAt(bucket, now);
    // Updated in place: this runs on every authenticated request.
    bucket.at = now;
    if (tokens >= 1) {
      bucket.tokens = tokens - 1;
      return ALLOWED;
    }
    bucket.tokens = tokens;
    return { allowed: false, retryAfterSeconds: this.secondsUntilOne(tokens) };
  }

  /**
   * Seconds until `caller` has a token, 0 if it has one now (or no bucket, which would start
   * full). Takes nothing, adds no bucket and leaves the order of least recent use as it is.
   */
  secondsUntilToken(caller: string): number {
    const bucket = this.buckets.get(caller);
    if (!bucket) return 0;
    const tokens = this.tokensAt(bucket, this.now());
    return tokens >= 1 ? 0 : this.secondsUntilOne(tokens);
  }

  /** Returns a token taken for something that turned out not to count (never past the burst). */
  giveBack(caller: string): void {
    const bucket = this.buckets.get(caller);
    if (bucket) bucket.tokens = Math.min(this.settings.burst, bucket.tokens + 1);
  }

  private tokensAt(bucket: Bucket, now: number): number {
    const { perSecond, burst } = this.settings;
    return Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
  }

  /** Whole seconds (Retry-After has no fractions), rounded up so a retry on time succeeds. */
  private secondsUntilOne(tokens: number): number {
    return Math.max(1, Math.ceil((1 - tokens) / this.settings.perSecond));
  }

  /**
   * A full bucket for a new caller. Past `maxCallers` the least recently used bucket is dropped,
   * so a flood from ever new addresses holds the map at that size instead of growing it. That
   * caller starts over with a full bucket if it comes back: the least recently used has had the
   * longest to refill, and is usually full already.
   */
  private add(caller: string, now: number): Bucket {
    if (this.buckets.size >= this.maxCallers) this.buckets.delete(this.buckets.keys().next().value!);
    const bucket = { tokens: this.settings.burst, at: now };
    this.buckets.set(caller, bucket);
    return bucket;
  }
}

/**
 * 429, rendered as problem+json with a Retry-After header by the ProblemDetailsFilter. Made
 * without a stack trace (see withoutStackTrace): a throttled caller may send many.
 */
@Stackless
export class TooManyRequestsException extends HttpException {
  declare readonly retryAfterSeconds: number;

  /** `detail` names the limit; the time to wait is added to it. */
  constructor(retryAfterSeconds: number, detail: string) {
    super(`${detail}; retry after ${retryAfterSeconds} second(s)`, HttpStatus.TOO_MANY_REQUESTS);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
