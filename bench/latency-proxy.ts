/**
 * A TCP proxy that holds every chunk for a while in each direction: PostgreSQL on loopback
 * answers in microseconds, while in production it is a network hop away. The end-to-end benchmark
 * puts this between the gateway and PostgreSQL when E2E_PG_RTT_MS is set. Run as its own process,
 * so that autocannon's event loop does not delay the chunks: `node latency-proxy.js`, with
 * TARGET_HOST, TARGET_PORT, PORT and ONE_WAY_MS in the environment; it prints `ready` once listening.
 */
import { connect, createServer, type Socket } from 'node:net';

const target = { host: process.env.TARGET_HOST ?? '127.0.0.1', port: Number(process.env.TARGET_PORT ?? 5432) };
const oneWayMs = Number(process.env.ONE_WAY_MS ?? 1);

/** Forwards what `from` sends to `to`, each chunk `oneWayMs` after it arrived, in order. */
function forwardLate(from: Socket, to: Socket): void {
  const queue: { due: number; chunk: Buffer }[] = [];
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  const flush = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.due <= now) to.write(queue.shift()!.chunk);
    if (queue.length > 0) timer = setTimeout(flush, queue[0]!.due - now);
    else if (ended) to.end();
  };
  from.on('data', (chunk: Buffer) => {
    queue.push({ due: performance.now() + oneWayMs, chunk });
    timer ??= setTimeout(flush, oneWayMs);
  });
  from.on('end', () => {
    ended = true;
    if (!timer) to.end();
  });
}

const server = createServer((client) => {
  client.setNoDelay(true);
  const upstream = connect(target, () => upstream.setNoDelay(true));
  forwardLate(client, upstream);
  forwardLate(upstream, client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => console.log('ready'));
