import type { FastifyInstance, RouteHandlerMethod } from 'fastify';
import { shutdownSteps } from '../shutdown/shutdown-steps.js';

/**
 * Shutdown must reach the hooks that stop the worker and close the database, whatever the clients
 * do. Once the server is closing, every response ends its connection: Fastify reaps idle
 * keep-alive connections when it starts closing, but a request already in flight then keeps its
 * connection open after the answer, and the server would wait out the keep-alive timeout. And
 * after `graceMs` the connections still open (a client trickling its body, or reading a long
 * export slowly) are closed: the server's close waits for every connection to end. A handler can
 * outlive its connection: the server's close then waits for it too, so that the database is not
 * closed under it (SHUTDOWN_TIMEOUT_MS bounds the wait).
 */
export function closeConnectionsOnShutdown(fastify: FastifyInstance, graceMs: number): void {
  let closing = false;
  let grace: NodeJS.Timeout | undefined;
  let closed: () => void = () => undefined;
  const handlers = handlersInFlight(fastify);
  fastify.addHook('preClose', (done) => {
    closing = true;
    void shutdownSteps.run('HTTP server: requests and connections still open', () => new Promise<void>((resolve) => (closed = resolve)));
    grace = setTimeout(() => {
      fastify.log.warn(`connections still open ${graceMs} ms after shutdown began are closed (SHUTDOWN_GRACE_MS)`);
      fastify.server.closeAllConnections();
    }, graceMs).unref();
    done();
  });
  fastify.addHook('onClose', async () => {
    clearTimeout(grace);
    if (handlers.count > 0) {
      fastify.log.warn(`${handlers.count} request(s) still being handled after their connections closed: waiting for them`);
      await handlers.finished();
    }
    closed();
  });
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
}

/** Counts the route handlers running (Nest's handlers return a promise that settles once they have answered). */
function handlersInFlight(fastify: FastifyInstance): { readonly count: number; finished(): Promise<void> } {
  let count = 0;
  let idle: (() => void) | undefined;
  const ended = () => {
    count -= 1;
    if (count === 0) idle?.();
  };
  fastify.addHook('onRoute', (route) => {
    const handler = route.handler;
    route.handler = function (this: FastifyInstance, request, reply) {
      count += 1;
      let result: unknown;
      try {
        result = handler.call(this, request, reply);
      } catch (error) {
        ended();
        throw error;
      }
      if (!isThenable(result)) {
        ended();
        return result;
      }
      return result.then(
        (value) => {
          ended();
          return value;
        },
        (error: unknown) => {
          ended();
          throw error;
        },
      );
    } as RouteHandlerMethod;
  });
  return {
    get count() {
      return count;
    },
    finished: () => (count === 0 ? Promise.resolve() : new Promise<void>((resolve) => (idle = resolve))),
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}
