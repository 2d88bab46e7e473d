import { Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { SLUICE_CONFIG, type SluiceConfig } from '../config/config.js';
import { TokenBucketLimiter, TooManyRequestsException } from '../http/rate-limit.js';
import { withoutStackTrace } from '../http/stackless.js';
import { ApiKeyService, type AuthenticatedKey } from './api-key.service.js';

const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;

/**
 * Who is calling, and whether they may call now: the API key of the Authorization header, then a
 * token from that key's bucket. One instance, so that the hook that runs before a body is read
 * and the guard share the buckets.
 */
@Injectable()
export class RequestAuthenticator {
  private readonly limiter: TokenBucketLimiter;

  constructor(
    @Inject(ApiKeyService) private readonly apiKeys: ApiKeyService,
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
  ) {
    this.limiter = new TokenBucketLimiter(config.rateLimit);
  }

  /** The caller's key; 401 without a valid one, 429 once the key has used up its rate. */
  async authenticate(authorization: string | string[] | undefined): Promise<AuthenticatedKey> {
    const match = typeof authorization === 'string' ? BEARER.exec(authorization) : null;
    if (!match) throw withoutStackTrace(() => new UnauthorizedException('An API key is required: Authorization: Bearer <key>'));
    const key = await this.apiKeys.authenticate(match[1]!);
    if (!key) throw withoutStackTrace(() => new UnauthorizedException('The API key is not valid'));
    // Per key and before any scope check: a key that only collects 403s is throttled all the same.
    const rate = this.limiter.take(key.id);
    if (!rate.allowed) {
      const { perSecond, burst } = this.config.rateLimit;
      throw new TooManyRequestsException(rate.retryAfterSeconds, `This API key may make ${perSecond} request(s) per second, in bursts of up to ${burst}, on each sluice replica`);
    }
    return key;
  }
}
