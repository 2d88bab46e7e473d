import { expect, it } from '@jest/globals';
import Fastify from 'fastify';
import { once } from 'node:events';
import { Agent, get, type IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { closeConnectionsOnShutdown } from '../../../src/platform/http/close-connections-on-shutdown.js';

it('closes a keep-alive connection once the response under way at shutdown has ended, not at the grace period', async () => {
  const fastify = Fastify();
  // Far longer than the test's timeout: only closing the idle connection lets the server close in time.
  closeConnectionsOnShutdown(fastify, 60_000);
  const body = new PassThrough();
  fastify.get('/export', (_request, reply) => reply.type('text/plain').send(body));
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  const { port } = fastify.server.address() as { port: number };

  // Node sends the headers with the first chunk of the body.
  body.write('the first line\n');
  const agent = new Agent({ keepAlive: true });
  const request = get({ host: '127.0.0.1', port, path: '/export', agent });
  // Its headers are out (keep-alive) before shutdown begins; its body is still being sent.
  const [response] = (await once(request, 'response')) as [IncomingMessage];
  expect(response.headers.connection).toBe('keep-alive');
  const closed = fastify.close();
  body.end('the last line\n');
  response.resume();
  await once(response, 'end');
  await closed;
  agent.destroy();
  fastify.server.closeAllConnections();
}, 10_000);
