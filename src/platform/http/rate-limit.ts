import { HttpException, HttpStatus } from '@nestjs/common';

export interface RateLimitSettings {
  /** Tokens added per second: the sustained request rate. */
  perSecond: number;
  /** Bucket size: how many requests may come at once after a quiet spell. */
  burst: number;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

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
    const bucket = this.buckets.get(caller) ?? { tokens: burst, at: now };
    const tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
    if (tokens >= 1) {
      this.buckets.set(caller, { tokens: tokens - 1, at: now });
      return { allowed: true };
    }
    this.buckets.set(caller, { tokens, at: now });
    // Whole seconds (Retry-After has no fractions), rounded up so a retry on time succeeds.
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / perSecond)) };
  }
}

/** 429, rendered as problem+json with a Retry-After header by the ProblemDetailsFilter. */
export class TooManyRequestsException extends HttpException {
  constructor(
    readonly retryAfterSeconds: number,
    settings: RateLimitSettings,
  ) {
    super(
      `This API key may make ${settings.perSecond} request(s) per second, in bursts of up to ${settings.burst}, on each sluice replica; retry after ${retryAfterSeconds} second(s)`,
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}
