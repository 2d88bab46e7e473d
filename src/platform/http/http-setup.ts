import { Logger, UnsupportedMediaTypeException } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyHttpOptions, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { SluiceConfig } from '../config/config.js';
import { authenticateBeforeBody } from '../auth/authenticate-before-body.js';
import { RequestAuthenticator } from '../auth/request-authenticator.js';
import { applyRouteBodyLimits, DEFAULT_BODY_LIMIT } from './body-limits.js';
import { parseJsonAsIJson, refuseUnrepresentableJson } from './json-body.js';
import { replyWithProblem, statusTitle } from './problem.js';
import { contentLengthOf } from './read-body.js';
import { addSecurityHeaders, registerCors, securityHeaders } from './security-headers.js';

/**
 * Options of the FastifyAdapter. The server-wide body limit is the small default (see
 * body-limits.ts). Fastify answers a URL it cannot decode, or a path parameter over its length
 * limit, before any hook runs; frameworkErrors makes that answer a problem+json with the same
 * security headers as every other.
 */
export function fastifyOptions(config: SluiceConfig): FastifyHttpOptions<Server> {
  const headers = securityHeaders(config);
  return {
    bodyLimit: DEFAULT_BODY_LIMIT,
    // Fastify turns Node's own limit off by default: a client trickling its body would hold its
    // buffer (and, at shutdown, the process) for as long as it likes.
    requestTimeout: config.httpRequestTimeoutMs,
    // Node enforces the request timeout only with a headers timeout no longer than it (its default,
    // 60 s, is derived from the timeout given here, not from the one Fastify sets afterwards), and
    // looks for requests past their time every 30 s unless told otherwise.
    http: {
      requestTimeout: config.httpRequestTimeoutMs,
      headersTimeout: Math.min(60_000, config.httpRequestTimeoutMs),
      connectionsCheckingInterval: Math.min(1000, config.httpRequestTimeoutMs),
    },
    trustProxy: false,
    frameworkErrors: (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      const status = error.statusCode ?? 500;
      void reply
        .headers(headers)
        .status(status)
        .header('content-type', 'application/problem+json')
        .send({ type: 'about:blank', title: statusTitle(status), status, detail: error.message });
    },
    clientErrorHandler: (error: Error & { code?: string }, socket: Duplex) => answerClientError(error, socket, headers),
  };
}

const CLIENT_ERRORS: Record<string, { status: number; detail: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, detail: 'The request did not arrive in full within HTTP_REQUEST_TIMEOUT_MS' },
  HPE_HEADER_OVERFLOW: { status: 431, detail: 'The request headers are too large' },
};

/**
 * What Node cannot hand to Fastify (a request that timed out, a malformed or oversized head) is
 * answered here, on the raw socket, as problem+json with the security headers, and the connection
 * is closed.
 */
function answerClientError(error: Error & { code?: string }, socket: Duplex, headers: Record<string, string>): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const { status, detail } = CLIENT_ERRORS[error.code ?? ''] ?? { status: 400, detail: 'The request is not valid HTTP' };
  const title = statusTitle(status);
  const body = JSON.stringify({ type: 'about:blank', title, status, detail });
  // Only if no answer is being written on this connection (a timeout can strike while one is
  // sent); as Node's own handler decides. A keep-alive connection has written earlier answers.
  const inFlight = (socket as Duplex & { _httpMessage?: { _headerSent?: boolean } | null })._httpMessage;
  if (socket.writable && (!inFlight || !inFlight._headerSent)) {
    const head = Object.entries({ ...headers, 'content-type': 'application/problem+json', 'content-length': String(Buffer.byteLength(body)), connection: 'close' }).map(([name, value]) => `${name}: ${value}\r\n`);
    socket.write(`HTTP/1.1 ${status} ${title}\r\n${head.join('')}\r\n${body}`);
  }
  socket.destroy();
}

/**
 * The HTTP hardening of the Fastify instance under Nest: per-route body limits, security headers,
 * JSON bodies the audit log can represent, authentication and rate limiting before a body is read,
 * and CORS. Must run before `app.init()`, which registers the routes.
 */
export async function configureHttp(app: NestFastifyApplication, config: SluiceConfig): Promise<void> {
  const fastify = app.getHttpAdapter().getInstance();
  acceptJsonBodiesOnly(fastify);
  applyRouteBodyLimits(fastify);
  addSecurityHeaders(fastify, securityHeaders(config));
  parseJsonAsIJson(fastify);
  refuseUnrepresentableJson(fastify);
  await registerCors(app, config);
  // After CORS: a 401 or 429 sent from this hook ends the request's hooks, and must carry the CORS
  // headers (an allowed browser origin reads Retry-After).
  authenticateBeforeBody(fastify, app.get(RequestAuthenticator), { whatsapp: config.whatsapp.appSecret });
}

/**
 * Every body sluice takes is JSON, as sent: a text/plain body (Fastify parses it as a string) and a
 * compressed one (which would be read as JSON whatever its coding) are answered 415, as a missing
 * or other content type already is. Nest's own form parser is not registered (`bodyParser: false`
 * in createApp).
 */
function acceptJsonBodiesOnly(fastify: FastifyInstance): void {
  fastify.removeContentTypeParser('text/plain');
  const logger = new Logger('Http');
  fastify.addHook('onRequest', (request, reply, done) => {
    const coding = request.headers['content-encoding']?.trim().toLowerCase();
    const length = contentLengthOf(request.headers);
    if (coding === undefined || coding === '' || coding === 'identity' || length === undefined || length === 0) return done();
    replyWithProblem(request, reply, new UnsupportedMediaTypeException('Content-Encoding is not supported: send the body uncompressed'), logger);
  });
}
