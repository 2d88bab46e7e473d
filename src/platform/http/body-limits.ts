import { WithRouteConfig } from './route-config.js';
import type { FastifyInstance, RouteOptions } from 'fastify';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * What a route accepts unless it declares more with @BodyLimit: consents, erasure, and routes
 * that take no body at all. It is also the server-wide limit (unknown routes, the parser's own).
 */
export const DEFAULT_BODY_LIMIT = 16 * KiB;
/** A share carries its photos and videos inline (data: URLs). */
export const SHARE_BODY_LIMIT = 8 * MiB;
/** Meta documents WhatsApp webhook payloads of up to 3 MB; refusing one would lose an opt-out. */
export const WEBHOOK_BODY_LIMIT = 3 * MiB;

/**
 * Raises (or lowers) the request body limit of one route. Nest's FastifyAdapter passes only a
 * route's `config` to Fastify, so the limit travels there and `applyRouteBodyLimits` moves it to
 * Fastify's own `bodyLimit` route option when the route is registered.
 */
export const BodyLimit = (bytes: number) => WithRouteConfig({ bodyLimit: bytes });

export interface RegisteredRoute {
  method: string;
  url: string;
  bodyLimit: number;
}

const routeTables = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/**
 * Gives every route registered from now on its declared body limit, or DEFAULT_BODY_LIMIT, and
 * records the routes: Fastify keeps no list of them that can be read back.
 */
export function applyRouteBodyLimits(fastify: FastifyInstance): void {
  const table: RegisteredRoute[] = [];
  routeTables.set(fastify, table);
  fastify.addHook('onRoute', (route: RouteOptions) => {
    const declared = (route.config as { bodyLimit?: unknown } | undefined)?.bodyLimit;
    if (declared !== undefined && !(Number.isSafeInteger(declared) && (declared as number) > 0)) {
      throw new Error(`${String(route.method)} ${route.url}: @BodyLimit needs a positive integer number of bytes`);
    }
    route.bodyLimit = (declared as number | undefined) ?? route.bodyLimit ?? DEFAULT_BODY_LIMIT;
    for (const method of [route.method].flat()) table.push({ method, url: route.url!, bodyLimit: route.bodyLimit });
  });
}

/** Every route of the app as Fastify registered it (HEAD twins of GET routes included). */
export function registeredRoutes(fastify: FastifyInstance): readonly RegisteredRoute[] {
  return routeTables.get(fastify) ?? [];
}
