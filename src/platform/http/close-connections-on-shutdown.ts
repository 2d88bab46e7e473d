import type { FastifyInstance } from 'fastify';
import { shutdownSteps } from '../shutdown/shutdown-steps.js';

/**
 * Shutdown must reach the hooks that stop the worker and close the database, whatever the clients
 * do. Once the server is closing, every response ends its connection: Fastify reaps idle
 * keep-alive connections when it starts closing, but a request already in flight then keeps its
 * connection open after the answer, and the server would wait out the keep-alive timeout. And
 * after `graceMs` the connections still open (a client trickling its body, or reading a long
 * export slowly) are closed: the server's close waits for every connection to end.
 */
export function closeConnectionsOnShutdown(fastify: FastifyInstance, graceMs: number): void {
  let closing = false;
  let grace: NodeJS.Timeout | undefined;
  let closed: () => void = () => undefined;
  fastify.addHook('preClose', (done) => {
    closing = true;
    void shutdownSteps.run('HTTP server: requests and connections still open', () => new Promise<void>((resolve) => (closed = resolve)));
    grace = setTimeout(() => {
      fastify.log.warn(`connections still open ${graceMs} ms after shutdown began are closed (SHUTDOWN_GRACE_MS)`);
      fastify.server.closeAllConnections();
    }, graceMs).unref();
    done();
  });
  fastify.addHook('onClose', (_instance, done) => {
    clearTimeout(grace);
    closed();
    done();
  });
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
}
