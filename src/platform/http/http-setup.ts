import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import type { SluiceConfig } from '../config/config.js';
import { applyRouteBodyLimits, DEFAULT_BODY_LIMIT } from './body-limits.js';
import { refuseUnrepresentableJson } from './json-body.js';
import { statusTitle } from './problem.js';
import { addSecurityHeaders, registerCors, securityHeaders } from './security-headers.js';

/**
 * Options of the FastifyAdapter. The server-wide body limit is the small default (see
 * body-limits.ts). Fastify answers a URL it cannot decode, or a path parameter over its length
 * limit, before any hook runs; frameworkErrors makes that answer a problem+json with the same
 * security headers as every other.
 */
export function fastifyOptions(config: SluiceConfig): FastifyServerOptions {
  const headers = securityHeaders(config);
  return {
    bodyLimit: DEFAULT_BODY_LIMIT,
    trustProxy: false,
    frameworkErrors: (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      const status = error.statusCode ?? 500;
      void reply
        .headers(headers)
        .status(status)
        .header('content-type', 'application/problem+json')
        .send({ type: 'about:blank', title: statusTitle(status), status, detail: error.message });
    },
  };
}

/**
 * The HTTP hardening of the Fastify instance under Nest: per-route body limits, security headers,
 * JSON bodies the audit log can represent, and CORS. Must run before `app.init()`, which registers the routes. (Rate limiting is per API
 * key, so it runs after authentication, in the ApiKeyGuard.)
 */
export async function configureHttp(app: NestFastifyApplication, config: SluiceConfig): Promise<void> {
  const fastify = app.getHttpAdapter().getInstance();
  applyRouteBodyLimits(fastify);
  addSecurityHeaders(fastify, securityHeaders(config));
  refuseUnrepresentableJson(fastify);
  await registerCors(app, config);
}
