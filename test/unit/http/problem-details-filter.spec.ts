import { describe, expect, it } from '@jest/globals';
import type { ArgumentsHost } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { Writable } from 'node:stream';
import { ProblemDetailsFilter } from '../../../src/platform/http/problem.js';
import { createLogger, NestPinoLogger } from '../../../src/platform/observability/logger.js';

const PHONE = '31612345678';

/** The filter's answer and log lines for one exception. */
function handle(exception: unknown): { status: number; body: unknown; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  Logger.overrideLogger(new NestPinoLogger(createLogger('verbose', destination)));
  const answer = { status: 0, body: undefined as unknown };
  const reply = {
    status: (code: number) => ((answer.status = code), reply),
    headers: () => reply,
    header: () => reply,
    send: (body: unknown) => ((answer.body = body), reply),
  };
  const host = { switchToHttp: () => ({ getResponse: () => reply, getRequest: () => ({ method: 'POST', routeOptions: { url: '/v1/shares' } }) }) } as unknown as ArgumentsHost;
  new ProblemDetailsFilter().catch(exception, host);
  return { ...answer, lines };
}

describe('ProblemDetailsFilter', () => {
  it('answers a server fault with a bare 500 and logs its type and stack frames, not a message of several lines', () => {
    const fault = new Error(`no consent\nfor ${PHONE}\nand more`);
    const { status, body, lines } = handle(fault);
    expect([status, body]).toEqual([500, { type: 'about:blank', title: 'internal server error', status: 500 }]);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.msg).toMatch(/^POST \/v1\/shares failed: Error\n\s+at /);
    expect(JSON.stringify(lines)).not.toContain(PHONE);
  });
});
