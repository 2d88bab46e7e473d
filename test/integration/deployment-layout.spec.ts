import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../support/build.js';
import { eventually } from '../support/eventually.js';
import { startGatewayProcess } from '../support/gateway-process.js';
import { REPO_ROOT } from '../support/test-app.js';

/**
 * A deployment ships the build, not the sources: package.json, dist/, schemas/, policies/ and the
 * installed node_modules. Whatever the gateway and the CLI read at run time must be in those.
 */
describe('a deployment without src/', () => {
  let dir: string;

  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'sluice-deployed-'));
    for (const part of ['package.json', 'dist', 'schemas', 'policies']) cpSync(join(REPO_ROOT, part), join(dir, part), { recursive: true });
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has no sources to fall back on', () => {
    expect(existsSync(join(dir, 'src'))).toBe(false);
  });

  it("passes the shipped policy's tests, names of people without consent cut by the ordinary-word list it ships", () => {
    const result = spawnSync(process.execPath, [join(dir, 'dist', 'src', 'cli', 'main.js'), 'policy', 'test'], {
      cwd: dir,
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
    });
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    expect(result.stdout).toMatch(/^\d+ passed, 0 failed$/m);
  });

  it("starts with the embedded defaults, migrates its database and shares as the README's walk-through does", async () => {
    const apiKey = 'deployment-key-0123456789abcdef';
    const gateway = await startGatewayProcess({ PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', SLUICE_BOOTSTRAP_KEY: apiKey, LOG_LEVEL: 'log' }, dir);
    try {
      const call = (path: string, body?: unknown, headers: Record<string, string> = {}) =>
        fetch(`${gateway.baseUrl}${path}`, {
          method: body === undefined ? 'GET' : 'POST',
          headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      const consent = (type: string, id: string) =>
        call('/v1/consents', { subject: { type, id }, purpose: 'frontline-updates', status: 'granted', evidence: { method: 'form', text: 'notice v3' } });
      expect((await consent('whatsapp', '31612345678')).status).toBe(201);
      expect((await consent('workplace', '100041234567890')).status).toBe(201);

      const share = await call(
        '/v1/shares',
        {
          purpose: 'frontline-updates',
          sharedBy: { workplaceUserId: '100041234567890' },
          post: {
            id: '1234567890_987654321',
            message: 'Pieter Jansen opened the new warehouse today! Pieter says thanks.',
            from: { id: '100041234567890', name: 'Anna de Vries' },
            message_tags: [{ id: '100049999', name: 'Pieter Jansen', type: 'user', offset: 0, length: 13 }],
          },
          recipients: [{ waId: '31612345678' }],
        },
        { 'idempotency-key': 'deployment-1' },
      );
      expect(share.status).toBe(201);
      expect(((await share.json()) as { status: string }).status).toBe('accepted');

      const sent = await eventually(async () => {
        const messages = (await (await call('/v1/sandbox/messages?waId=31612345678')).json()) as Array<{ request: { text: { body: string } } }>;
        return messages.length > 0 ? messages : undefined;
      }, 'the delivery worker to send the message');
      expect(sent.map((message) => message.request.text.body)).toEqual(['Anna de Vries:\n[person] opened the new warehouse today! [person] says thanks.']);
      expect(existsSync(join(dir, 'data', 'sluice.db'))).toBe(true);
    } finally {
      gateway.server.kill('SIGTERM');
      await once(gateway.server, 'exit');
    }
  }, 60_000);
});
