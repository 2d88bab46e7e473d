import { type CanActivate, type ExecutionContext, ForbiddenException, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { withoutStackTrace } from '../http/stackless.js';
import { PUBLIC_ROUTE, REQUIRED_SCOPE } from './auth.decorators.js';
import type { AuthenticatedKey } from './api-key.service.js';
import { RequestAuthenticator } from './request-authenticator.js';
import type { Scope } from './scopes.js';

export type AuthenticatedRequest = FastifyRequest & { apiKey: AuthenticatedKey };

/** What a route declares about access: read from its decorators once, not on every request. */
interface RouteAccess {
  controller: unknown;
  isPublic: boolean;
  scope: Scope | undefined;
}

/**
 * Every route but a @PublicRoute needs an API key with the route's scope. The key is normally
 * authenticated, rate limited and its scope checked before the body was read, by the hook of
 * authenticate-before-body.ts; a route that hook does not know is authenticated here.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly routes = new WeakMap<object, RouteAccess>();

  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(RequestAuthenticator) private readonly authenticator: RequestAuthenticator,
  ) {}

  // Not async: a public route (health probes) is let through without a promise.
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const access = this.accessOf(context);
    if (access.isPublic) return true;
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    return request.apiKey ? this.allow(request.apiKey, access.scope) : this.authenticate(request, access.scope);
  }

  private async authenticate(request: AuthenticatedRequest, scope: Scope | undefined): Promise<boolean> {
    request.apiKey = await this.authenticator.authenticate(request.headers.authorization, request.ip);
    return this.allow(request.apiKey, scope);
  }

  private allow(key: AuthenticatedKey, scope: Scope | undefined): boolean {
    // A route that forgot to declare its scope is closed to everyone rather than open to every key.
    if (scope === undefined) throw withoutStackTrace(() => new ForbiddenException('This route declares no scope'));
    if (!key.scopes.has(scope)) throw lacksScope(scope);
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

/** The 403 of a key without the route's scope. */
export function lacksScope(scope: Scope): ForbiddenException {
  return withoutStackTrace(() => new ForbiddenException(`This API key lacks the scope ${scope}`));
}
