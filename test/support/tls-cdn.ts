import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { RequestListener } from 'node:http';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A CDN stand-in: an HTTPS server on loopback with a certificate made for the test. */
export interface TlsCdn {
  /** `https://localhost:<port>` */
  base: string;
  port: number;
  /** TCP connections accepted so far, to prove that a refused URL was never connected to. */
  connections(): number;
  /** The certificate's file, for MEDIA_FETCH_CA_FILE. */
  caFile: string;
  close(): void;
}

export async function startTlsCdn(handler: RequestListener): Promise<TlsCdn> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cdn-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ], { stdio: 'pipe' });
  const server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, handler);
  let connections = 0;
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    base: `https://localhost:${port}`,
    port,
    connections: () => connections,
    caFile: join(dir, 'cert.pem'),
    close() {
      server.closeAllConnections();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
