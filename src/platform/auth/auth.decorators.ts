import { applyDecorators, SetMetadata } from '@nestjs/common';
import { WithRouteConfig } from '../http/route-config.js';
import type { Scope } from './scopes.js';

export const REQUIRED_SCOPE = 'sluice:required-scope';
export const PUBLIC_ROUTE = 'sluice:public-route';
/** The same declaration in the Fastify route's config, for the hook that authenticates before a body is read. */
export const ROUTE_ACCESS = 'sluiceAccess';

/** The scope a caller's API key must hold for this route. */
export const RequireScope = (scope: Scope) => applyDecorators(SetMetadata(REQUIRED_SCOPE, scope), WithRouteConfig({ [ROUTE_ACCESS]: 'key' }));
/** A route that needs no API key (health probes). Every other route needs one: fail closed. */
export const PublicRoute = () => applyDecorators(SetMetadata(PUBLIC_ROUTE, true), WithRouteConfig({ [ROUTE_ACCESS]: 'public' }));

/** Where a signed route's config keeps its signature header and the form a signature takes. */
export const SIGNATURE = 'sluiceSignature';

/**
 * A route that needs no API key because its caller signs the body (a webhook). A request without a
 * signature header of that form is refused with 401 before its body is read; the handler checks
 * the signature itself against the bytes, before it looks at what they say.
 */
export const SignedRoute = (header: string, form: RegExp) =>
  applyDecorators(SetMetadata(PUBLIC_ROUTE, true), WithRouteConfig({ [ROUTE_ACCESS]: 'signed', [SIGNATURE]: { header: header.toLowerCase(), name: header, form } }));
