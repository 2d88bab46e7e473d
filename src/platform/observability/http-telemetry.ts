import { context } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';
import { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { requestContext } from './logger.js';

export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * Every request gets sluice's own id; a caller's X-Request-Id is not taken. Whatever form one
 * would have to have, it could carry personal data into every log line of the request: hex digits
 * are digits, and `aaaaaaaaaaaaaaaaaaaaa31647291835` is 32 of them with a phone number inside.
 * Traces still join a caller's: the W3C traceparent header is what links them.
 */
export function requestIdFor(): string {
  // randomUUID draws on a cached batch of entropy; randomBytes made a getrandom call per request.
  return `req_${randomUUID()}`;
}

/** The route template a request matched (`/v1/subjects/:type/:id/report`); none for an unknown route. */
export function routeOf(request: FastifyRequest): string | undefined {
  return request.routeOptions?.url;
}

/**
 * Fastify's request log lines, written with the route template instead of the URL (URLs carry
 * subject ids and query strings such as ?waId=) and without error messages (they may quote input):
 * one `request completed` line per request, at info.
 */
export class RouteTemplateLogController extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return;
    request.log.debug({ method: request.method, route: routeOf(request) }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    const line = { method: request.method, route: routeOf(request), statusCode: reply.statusCode, durationMs: Math.round(reply.elapsedTime * 10) / 10 };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }

  override defaultErrorLog(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    reply.log[reply.statusCode >= 500 ? 'error' : 'info']({ method: request.method, route: routeOf(request), statusCode: reply.statusCode, err: error }, 'request failed');
  }

  override routeNotFound(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return;
    request.log.info({ method: request.method }, 'route not found');
  }

  override writeHeadError(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    reply.log.warn({ method: request.method, route: routeOf(request), err: error }, 'writing the response head failed');
  }
}

/** FastifyAdapter options that give Fastify the process's pino logger, request ids and request log lines. */
export function fastifyLogging(logger: Logger): { loggerInstance: FastifyBaseLogger; genReqId: typeof requestIdFor; logController: LogController } {
  return { loggerInstance: logger, genReqId: requestIdFor, logController: new RouteTemplateLogController() };
}

/**
 * Per request: names the route template on the HTTP server span (`http.route`, and the span's
 * name `GET /v1/shares/:id`; the URL attributes are dropped on export, see span-sanitiser.ts),
 * echoes the request id in X-Request-Id, and makes the request id known to log lines written
 * without the request at hand. Must run before `app.init()` registers the routes.
 */
export function instrumentRequests(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    const route = routeOf(request);
    const metadata = getRPCMetadata(context.active());
    if (route && metadata?.type === RPCType.HTTP) metadata.route = route;
    void reply.header(REQUEST_ID_HEADER, request.id);
    requestContext.run({ requestId: request.id }, done);
  });
  // The body arrives in events of the socket's own async context: enter the request's again for the handler.
  fastify.addHook('preHandler', (request, _reply, done) => {
    requestContext.run({ requestId: request.id }, done);
  });
}
