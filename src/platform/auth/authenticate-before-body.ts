import type { FastifyInstance } from 'fastify';
import { Logger, UnauthorizedException } from '@nestjs/common';
import { replyWithProblem } from '../http/problem.js';
import type { AuthenticatedRequest } from './api-key.guard.js';
import { ROUTE_ACCESS, SIGNATURE } from './auth.decorators.js';
import type { RequestAuthenticator } from './request-authenticator.js';

/**
 * Authenticates and rate limits a request to a route that needs an API key as soon as it arrives,
 * before its body is read: without a valid key, or past its rate, a caller cannot make the server
 * buffer and parse a body (up to 8 MiB on POST /v1/shares). The guard then checks the scope.
 * A signed route (a webhook) without a signature of the declared form is refused the same way.
 * Routes that declare nothing here (unknown URLs, CORS preflights) go on as before.
 */
export function authenticateBeforeBody(fastify: FastifyInstance, authenticator: RequestAuthenticator): void {
  const logger = new Logger('Http');
  fastify.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config as unknown as Record<string, unknown> | undefined;
    if (config?.[ROUTE_ACCESS] === 'signed') {
      const { header, name, form } = config[SIGNATURE] as { header: string; name: string; form: RegExp };
      const signature = request.headers[header];
      if (typeof signature === 'string' && form.test(signature.trim())) return;
      return replyWithProblem(request, reply, new UnauthorizedException(`${name} is missing or does not match the body`), logger, { connection: 'close' });
    }
    if (config?.[ROUTE_ACCESS] !== 'key') return;
    try {
      (request as AuthenticatedRequest).apiKey = await authenticator.authenticate(request.headers.authorization);
    } catch (error) {
      // The body is not read: the connection cannot carry another request after it.
      return replyWithProblem(request, reply, error, logger, { connection: 'close' });
    }
  });
}
