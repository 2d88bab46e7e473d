import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Logger } from '@nestjs/common';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ChallengedUnauthorizedException, replyWithProblem } from '../http/problem.js';
import { bodyStream, readBodyWithin } from '../http/read-body.js';
import { type AuthenticatedRequest, lacksScope } from './api-key.guard.js';
import { ROUTE_ACCESS, ROUTE_SCOPE, SIGNATURE, type SignedRouteSignature } from './auth.decorators.js';
import type { RequestAuthenticator } from './request-authenticator.js';
import type { Scope } from './scopes.js';

/** Signing secrets by the name a SignedRoute gives; an absent one refuses its routes. */
export type SigningSecrets = Readonly<Record<string, string | undefined>>;

/**
 * Whether `header` has the signature's form and its hex digest (the form's first group) is the
 * HMAC-SHA256 of `body` under `secret`. The comparison takes the same time wherever the digests
 * differ, so a signature cannot be guessed byte by byte.
 */
export function signatureMatches(body: Buffer, header: unknown, form: RegExp, secret: string): boolean {
  if (typeof header !== 'string') return false;
  const digest = form.exec(header.trim())?.[1];
  if (digest === undefined || !/^(?:[0-9a-f]{2})+$/i.test(digest)) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  const given = Buffer.from(digest, 'hex');
  return given.length === expected.length && timingSafeEqual(expected, given);
}

/**
 * Authenticates and rate limits a request to a route that needs an API key as soon as it arrives,
 * before its body is read: without a valid key, without the route's scope, or past its rate, a
 * caller cannot make the server buffer and parse a body (up to 8 MiB on POST /v1/shares), and
 * is answered 401, 403 or 429 whatever the body.
 * A signed route (a webhook) is refused the same way without a signature of its form or without
 * its secret configured; else its body is read (within the route's limit) and its signature
 * checked against those bytes before any parser sees them, so an unsigned caller cannot make
 * the server parse 3 MiB of nested JSON. Routes that declare nothing here (unknown URLs, CORS
 * preflights) go on as before.
 */
export function authenticateBeforeBody(fastify: FastifyInstance, authenticator: RequestAuthenticator, secrets: SigningSecrets): void {
  const logger = new Logger('Http');
  const refuse = (request: FastifyRequest, reply: FastifyReply, error: unknown) => replyWithProblem(request, reply, error, logger, { connection: 'close' });
  fastify.addHook('onRequest', async (request, reply) => {
    const signed = signatureOf(request);
    if (signed) {
      const signature = request.headers[signed.header];
      if (secrets[signed.secret] !== undefined && typeof signature === 'string' && signed.form.test(signature.trim())) return;
      return refuse(request, reply, unsigned(signed));
    }
    if (routeAccess(request) !== 'key') return;
    try {
      const key = await authenticator.authenticate(request.headers.authorization, request.ip);
      (request as AuthenticatedRequest).apiKey = key;
      // The scope too, before the body: a key that may not use the route gets 403 whatever it sends.
      const scope = (request.routeOptions.config as unknown as Record<string, unknown>)[ROUTE_SCOPE] as Scope;
      if (!key.scopes.has(scope)) return refuse(request, reply, lacksScope(scope));
    } catch (error) {
      // The body is not read: the connection cannot carry another request after it.
      return refuse(request, reply, error);
    }
  });
  fastify.addHook('preParsing', async (request, reply, payload) => {
    const signed = signatureOf(request);
    if (!signed) return payload;
    const body = await readBodyWithin(payload, request.routeOptions.bodyLimit ?? Infinity, Number(request.headers['content-length'] ?? NaN), reply);
    if (!signatureMatches(body, request.headers[signed.header], signed.form, secrets[signed.secret]!)) throw unsigned(signed);
    return bodyStream(body);
  });
}

function routeAccess(request: FastifyRequest): unknown {
  return (request.routeOptions.config as unknown as Record<string, unknown> | undefined)?.[ROUTE_ACCESS];
}

function signatureOf(request: FastifyRequest): SignedRouteSignature | undefined {
  return routeAccess(request) === 'signed' ? ((request.routeOptions.config as unknown as Record<string, unknown>)[SIGNATURE] as SignedRouteSignature) : undefined;
}

function unsigned(signed: SignedRouteSignature): ChallengedUnauthorizedException {
  return new ChallengedUnauthorizedException(`${signed.name} is missing or does not match the body`, `HMAC-SHA256 header="${signed.name}"`);
}
