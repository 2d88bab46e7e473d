import { applyDecorators, SetMetadata } from '@nestjs/common';
import { WithRouteConfig } from '../http/route-config.js';
import type { Scope } from './scopes.js';

export const REQUIRED_SCOPE = 'sluice:required-scope';
export const PUBLIC_ROUTE = 'sluice:public-route';
/** The same declaration in the Fastify route's config, for the hook that authenticates before a body is read. */
export const ROUTE_ACCESS = 'sluiceAccess';
/** The route's scope in its Fastify config, for the same hook. */
export const ROUTE_SCOPE = 'sluiceScope';

/** The scope a caller's API key must hold for this route. */
export const RequireScope = (scope: Scope) => applyDecorators(SetMetadata(REQUIRED_SCOPE, scope), WithRouteConfig({ [ROUTE_ACCESS]: 'key', [ROUTE_SCOPE]: scope }));
/** A route that needs no API key (health probes). Every other route needs one: fail closed. */
export const PublicRoute = () => applyDecorators(SetMetadata(PUBLIC_ROUTE, true), WithRouteConfig({ [ROUTE_ACCESS]: 'public' }));

/** Where a signed route's config keeps its signature's header, form and secret (SignedRouteSignature). */
export const SIGNATURE = 'sluiceSignature';

export interface SignedRouteSignature {
  /** The header's name in lower case, as Node gives it. */
  header: string;
  /** The header's name as documented, for messages. */
  name: string;
  /** The form a signature takes; its first group is the hex HMAC-SHA256 of the body. */
  form: RegExp;
  /** Which of the signing secrets given to authenticateBeforeBody keys the HMAC. */
  secret: string;
}

/**
 * A route that needs no API key because its caller signs the body (a webhook) with
 * HMAC-SHA256 under the secret named `secret`. A request without a signature header of that form,
 * or while no such secret is configured, is refused with 401 before its body is read; one whose
 * signature does not match its bytes is refused once they are read, before they are parsed.
 */
export const SignedRoute = (header: string, form: RegExp, secret: string) =>
  applyDecorators(
    SetMetadata(PUBLIC_ROUTE, true),
    WithRouteConfig({ [ROUTE_ACCESS]: 'signed', [SIGNATURE]: { header: header.toLowerCase(), name: header, form, secret } satisfies SignedRouteSignature }),
  );
