import { type CanActivate, type ExecutionContext, ForbiddenException, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { SLUICE_CONFIG, type SluiceConfig } from '../config/config.js';
import { withoutStackTrace } from '../http/stackless.js';
import { TokenBucketLimiter, TooManyRequestsException } from '../http/rate-limit.js';
import { PUBLIC_ROUTE, REQUIRED_SCOPE } from './auth.decorators.js';
import { ApiKeyService, type AuthenticatedKey } from './api-key.service.js';
import type { Scope } from './scopes.js';

export type AuthenticatedRequest = FastifyRequest & { apiKey: AuthenticatedKey };

const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;

/** What a route declares about access: read from its decorators once, not on every request. */
interface RouteAccess {
  controller: unknown;
  isPublic: boolean;
  scope: Scope | undefined;
}

@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly limiter: TokenBucketLimiter;
  private readonly routes = new WeakMap<object, RouteAccess>();

  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(ApiKeyService) private readonly apiKeys: ApiKeyService,
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
  ) {
    this.limiter = new TokenBucketLimiter(config.rateLimit);
  }

  // Not async: a public route (health probes) is let through without a promise.
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const access = this.accessOf(context);
    if (access.isPublic) return true;
    return this.authenticate(context.switchToHttp().getRequest<AuthenticatedRequest>(), access.scope);
  }

  private async authenticate(request: AuthenticatedRequest, scope: Scope | undefined): Promise<boolean> {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? BEARER.exec(header) : null;
    if (!match) throw withoutStackTrace(() => new UnauthorizedException('An API key is required: Authorization: Bearer <key>'));
    const key = await this.apiKeys.authenticate(match[1]!);
    if (!key) throw withoutStackTrace(() => new UnauthorizedException('The API key is not valid'));
    // Per key and before the scope check: a key that only collects 403s is throttled all the same.
    const rate = this.limiter.take(key.id);
    if (!rate.allowed) throw new TooManyRequestsException(rate.retryAfterSeconds, this.config.rateLimit);

    // A route that forgot to declare its scope is closed to everyone rather than open to every key.
    if (scope === undefined || !key.scopes.has(scope)) {
      throw withoutStackTrace(() => new ForbiddenException(scope ? `This API key lacks the scope ${scope}` : 'This route declares no scope'));
    }
    request.apiKey = key;
    return true;
  }

  /** The route's @PublicRoute and @RequireScope (handler first, then controller), cached per handler. */
  private accessOf(context: ExecutionContext): RouteAccess {
    const handler = context.getHandler();
    const controller = context.getClass();
    const cached = this.routes.get(handler);
    if (cached?.controller === controller) return cached;
    const targets = [handler, controller];
    const access: RouteAccess = {
      controller,
      isPublic: Boolean(this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)),
      scope: this.reflector.getAllAndOverride<Scope | undefined>(REQUIRED_SCOPE, targets),
    };
    this.routes.set(handler, access);
    return access;
  }
}
