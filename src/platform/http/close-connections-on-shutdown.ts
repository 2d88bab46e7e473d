import type { FastifyInstance } from 'fastify';

/**
 * Once the server is closing, every response ends its connection. Fastify reaps idle keep-alive
 * connections when it starts closing, but a request already in flight then keeps its connection
 * open after the answer, and the server would wait out the keep-alive timeout before shutdown
 * could go on to stop the worker and close the database.
 */
export function closeConnectionsOnShutdown(fastify: FastifyInstance): void {
  let closing = false;
  fastify.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
}
