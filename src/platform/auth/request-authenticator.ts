import { Inject, Injectable } from '@nestjs/common';
import { SLUICE_CONFIG, type SluiceConfig } from '../config/config.js';
import { clientNetworkOf, ipv6SiteOf } from '../http/client-network.js';
import { TokenBucketLimiter, TooManyRequestsException } from '../http/rate-limit.js';
import { ChallengedUnauthorizedException } from '../http/problem.js';
import { withoutStackTrace } from '../http/stackless.js';
import { ApiKeyService, type AuthenticatedKey, hashApiKey } from './api-key.service.js';

/** The scheme is case-insensitive and may be followed by more than one space (RFC 9110, 11.1 and 11.4). */
const BEARER = /^Bearer +([\x21-\x7e]{1,512})$/i;

/** What a 401 asks for (RFC 6750, 3). */
const BEARER_CHALLENGE = 'Bearer realm="sluice"';

/**
 * Client addresses whose failed authentications are counted at once: a bound on that map
 * (around 10 MB), however many addresses a flood comes from. See TokenBucketLimiter.add. The
 * IPv6 /48s are bounded the same, in a map of their own.
 */
const MAX_CLIENT_NETWORKS = 50_000;

/**
 * How many times a /64's failures an IPv6 /48 may make, in rate and burst. A /48 is a site: an
 * office or a home may have several /64s, and 8 of them failing at full rate at once pass; one
 * holder of a /48 cycling through its 65,536 /64s gets 8 buckets' worth instead of 65,536.
 */
const SITE_FAILURES_PER_NETWORK = 8;

/**
 * Who is calling, and whether they may call now: the API key of the Authorization header, then a
 * token from that key's bucket. One instance, so that the hook that runs before a body is read
 * and the guard share the buckets.
 *
 * A key this process does not know to be stored (ApiKeyService.isKnown) is looked up only with a
 * token from its client address's bucket of failed authentications, so one client cannot guess
 * keys, or make a database read per request, at any rate. A key it knows is looked up without
 * one: an integration with a valid key is not locked out because others at its address (behind
 * the same NAT) keep failing. Guessing does not make a key known, only a stored key does, and a
 * key created elsewhere since this process started is known within a minute (knowsAfterReload).
 */
@Injectable()
export class RequestAuthenticator {
  private readonly keyLimiter: TokenBucketLimiter;
  private readonly failureLimiter: TokenBucketLimiter;
  private readonly siteFailureLimiter: TokenBucketLimiter;
  private readonly siteFailureLimit: { perMinute: number; burst: number };

  constructor(
    @Inject(ApiKeyService) private readonly apiKeys: ApiKeyService,
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
  ) {
    this.keyLimiter = new TokenBucketLimiter(config.rateLimit);
    const { perMinute, burst } = config.authFailureLimit;
    this.failureLimiter = new TokenBucketLimiter({ perSecond: perMinute / 60, burst }, { maxCallers: MAX_CLIENT_NETWORKS });
    this.siteFailureLimit = { perMinute: perMinute * SITE_FAILURES_PER_NETWORK, burst: burst * SITE_FAILURES_PER_NETWORK };
    this.siteFailureLimiter = new TokenBucketLimiter(
      { perSecond: this.siteFailureLimit.perMinute / 60, burst: this.siteFailureLimit.burst },
      { maxCallers: MAX_CLIENT_NETWORKS },
    );
  }

  /**
   * The caller's key; 401 without a valid one, 429 once the key has used up its rate, or once its
   * client address (`clientAddress`, the connection's peer) or, for IPv6, its /48 has used up its
   * failed authentications.
   */
  async authenticate(authorization: string | string[] | undefined, clientAddress: string | undefined): Promise<AuthenticatedKey> {
    const match = typeof authorization === 'string' ? BEARER.exec(authorization) : null;
    // Not counted as a failure: it costs no lookup and guesses nothing.
    if (!match) throw withoutStackTrace(() => new ChallengedUnauthorizedException('An API key is required: Authorization: Bearer <key>', BEARER_CHALLENGE));
    const keyHash = hashApiKey(match[1]!);
    const key = this.apiKeys.isKnown(keyHash) ? await this.apiKeys.authenticate(keyHash) : await this.lookUpUnknown(keyHash, clientAddress);
    if (!key) throw withoutStackTrace(() => new ChallengedUnauthorizedException('The API key is not valid', `${BEARER_CHALLENGE}, error="invalid_token"`));
    // Per key and before any scope check: a key that only collects 403s is throttled all the same.
    const rate = this.keyLimiter.take(key.id);
    if (!rate.allowed) {
      const { perSecond, burst } = this.config.rateLimit;
      throw new TooManyRequestsException(rate.retryAfterSeconds, `This API key may make ${perSecond} request(s) per second, in bursts of up to ${burst}, on each sluice replica`);
    }
    return key;
  }

  /**
   * The token is taken before the lookup, so that concurrent requests cannot all pass a client's
   * last one, and given back if the key is found: only failures keep theirs. Without a token the
   * request is refused without a lookup, unless the stored keys, loaded again at most once a
   * minute, turn out to hold its key.
   */
  private async lookUpUnknown(keyHash: string, clientAddress: string | undefined): Promise<AuthenticatedKey | undefined> {
    const network = clientNetworkOf(clientAddress);
    const site = ipv6SiteOf(clientAddress);
    const refusal = this.takeFailureToken(network, site);
    if (!refusal) {
      const key = await this.apiKeys.authenticate(keyHash);
      if (key) {
        this.failureLimiter.giveBack(network);
        if (site !== undefined) this.siteFailureLimiter.giveBack(site);
      }
      return key;
    }
    if (await this.apiKeys.knowsAfterReload(keyHash)) return this.apiKeys.authenticate(keyHash);
    throw refusal;
  }

  /**
   * A token from the client network's bucket and, for IPv6, one from its /48's too; or none, and
   * the 429 to answer. The /48 goes first: once it is empty, requests from its ever new /64s add
   * no buckets to the map of networks, where they would push out others'.
   */
  private takeFailureToken(network: string, site: string | undefined): TooManyRequestsException | undefined {
    if (site !== undefined) {
      const siteRate = this.siteFailureLimiter.take(site);
      if (!siteRate.allowed) {
        // The /64 may be empty as well, for longer: a retry before it has a token would fail again.
        const retryAfterSeconds = Math.max(siteRate.retryAfterSeconds, this.failureLimiter.secondsUntilToken(network));
        return tooManyFailures(retryAfterSeconds, "this address's IPv6 /48 network", this.siteFailureLimit);
      }
    }
    const rate = this.failureLimiter.take(network);
    if (rate.allowed) return undefined;
    if (site !== undefined) this.siteFailureLimiter.giveBack(site);
    return tooManyFailures(rate.retryAfterSeconds, 'this address', this.config.authFailureLimit);
  }
}

function tooManyFailures(retryAfterSeconds: number, from: string, { perMinute, burst }: { perMinute: number; burst: number }): TooManyRequestsException {
  return new TooManyRequestsException(
    retryAfterSeconds,
    `Too many requests with an API key that is not valid came from ${from}: ${perMinute} per minute, in bursts of up to ${burst}, on each sluice replica`,
  );
}
