import { type CanActivate, type ExecutionContext, ForbiddenException, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { SLUICE_CONFIG, type SluiceConfig } from '../config/config.js';
import { TokenBucketLimiter, TooManyRequestsException } from '../http/rate-limit.js';
import { PUBLIC_ROUTE, REQUIRED_SCOPE } from './auth.decorators.js';
import { ApiKeyService, type AuthenticatedKey } from './api-key.service.js';
import type { Scope } from './scopes.js';

export type AuthenticatedRequest = FastifyRequest & { apiKey: AuthenticatedKey };

@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly limiter: TokenBucketLimiter;

  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(ApiKeyService) private readonly apiKeys: ApiKeyService,
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
  ) {
    this.limiter = new TokenBucketLimiter(config.rateLimit);
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;

    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer ([\x21-\x7e]{1,512})$/.exec(header) : null;
    if (!match) throw new UnauthorizedException('An API key is required: Authorization: Bearer <key>');
    const key = await this.apiKeys.authenticate(match[1]!);
    if (!key) throw new UnauthorizedException('The API key is not valid');
    // Per key and before the scope check: a key that only collects 403s is throttled all the same.
    const rate = this.limiter.take(key.id);
    if (!rate.allowed) throw new TooManyRequestsException(rate.retryAfterSeconds, this.config.rateLimit);

    const scope = this.reflector.getAllAndOverride<Scope | undefined>(REQUIRED_SCOPE, targets);
    // A route that forgot to declare its scope is closed to everyone rather than open to every key.
    if (scope === undefined || !key.scopes.has(scope)) {
      throw new ForbiddenException(scope ? `This API key lacks the scope ${scope}` : 'This route declares no scope');
    }
    request.apiKey = key;
    return true;
  }
}
