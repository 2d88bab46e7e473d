import cors from '@fastify/cors';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import type { SluiceConfig } from '../config/config.js';

/**
 * SHA-256 of the one inline <style> of the subject access report (subjects/get-subject-report/
 * subject-report.html.ts): the only thing any response may load. A change to that style must
 * change this hash; test/unit/http/security-headers.spec.ts fails until it does.
 */
export const SUBJECT_REPORT_STYLE_HASH = 'sha256-KY6DeBFviUOMwTWg4+wAvjtt10gErFvT3837isluuKo=';

/**
 * One Content-Security-Policy for everything sluice serves: JSON, NDJSON, text and the subject's
 * HTML report. Nothing may be loaded, framed, posted to or used as a base URL; the report's own
 * style block is allowed by its hash.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src '${SUBJECT_REPORT_STYLE_HASH}'`,
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

/**
 * The headers every response carries. They do not depend on the request, so they are computed
 * once; sluice may sit behind a proxy that terminates TLS, and browsers ignore HSTS received
 * over plain HTTP, so it is sent either way. Nothing is to be kept by a browser or a proxy on
 * the way: share documents, consent histories, sandbox copies and reports hold personal data.
 */
export function securityHeaders(config: Pick<SluiceConfig, 'hsts'>): Record<string, string> {
  return {
    'cache-control': 'no-store',
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'x-permitted-cross-domain-policies': 'none',
    ...(config.hsts.maxAge > 0 ? { 'strict-transport-security': `max-age=${config.hsts.maxAge}${config.hsts.includeSubDomains ? '; includeSubDomains' : ''}` } : {}),
  };
}

/**
 * Sets the security headers when a request arrives, so that every answer has them, errors and
 * unknown routes included. (Answers Fastify writes before any hook, for a malformed URL, get
 * them from the frameworkErrors handler in http-setup.ts.)
 */
export function addSecurityHeaders(fastify: FastifyInstance, headers: Record<string, string>): void {
  fastify.addHook('onRequest', (_request, reply, done) => {
    void reply.headers(headers);
    done();
  });
}

/**
 * CORS stays closed unless CORS_ORIGINS names origins: without it no response carries
 * Access-Control-Allow-Origin and a preflight finds no route (404). With it, only those exact
 * origins get CORS headers; a preflight from any other origin is refused the same way.
 */
export async function registerCors(app: NestFastifyApplication, config: SluiceConfig): Promise<void> {
  if (config.corsOrigins.length === 0) return;
  const allowed = new Set(config.corsOrigins);
  await app.register(cors, {
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin) ? origin : false),
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: ['authorization', 'content-type', 'idempotency-key'],
    exposedHeaders: ['retry-after', 'idempotent-replayed', 'content-disposition'],
    maxAge: 600,
    strictPreflight: true,
  });
}
