import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createServer, type Server, type Socket } from 'node:net';
import { createDataSource } from '../../../src/data-source.js';

/** A host that accepts TCP connections and never answers: a database gone behind a firewall or a dead proxy. */
let silent: Server;
const sockets: Socket[] = [];

beforeAll(async () => {
  silent = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
});

it('gives up connecting to a PostgreSQL server that never answers, instead of waiting for good', async () => {
  const { port } = silent.address() as { port: number };
  const dataSource = createDataSource({ type: 'postgres', url: `postgres://postgres@127.0.0.1:${port}/sluice`, poolSize: 2, connectTimeoutMs: 500 });
  const began = Date.now();
  await expect(dataSource.initialize()).rejects.toThrow(/timeout/i);
  expect(Date.now() - began).toBeLessThan(5_000);
});
