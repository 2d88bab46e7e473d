import { SetMetadata } from '@nestjs/common';
import type { Scope } from './scopes.js';

export const REQUIRED_SCOPE = 'sluice:required-scope';
export const PUBLIC_ROUTE = 'sluice:public-route';

/** The scope a caller's API key must hold for this route. */
export const RequireScope = (scope: Scope) => SetMetadata(REQUIRED_SCOPE, scope);
/** A route that needs no API key (health probes). Every other route needs one: fail closed. */
export const PublicRoute = () => SetMetadata(PUBLIC_ROUTE, true);
