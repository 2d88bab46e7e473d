import { describe, expect, it } from '@jest/globals';
import { failureOfErrorResponse, failureOfTransportError } from '../../../src/delivery/cloud-api/cloud-api-errors.js';
import { retryDelayMs } from '../../../src/delivery/retries.js';

describe('retry delay', () => {
  it('doubles per attempt, with jitter between half and all of it', () => {
    expect(retryDelayMs(1, 1000, () => 0)).toBe(500);
    expect(retryDelayMs(1, 1000, () => 1)).toBe(1000);
    expect(retryDelayMs(4, 1000, () => 0)).toBe(4000);
    expect(retryDelayMs(4, 1000, () => 1)).toBe(8000);
  });

  it('is capped at an hour', () => {
    expect(retryDelayMs(40, 1000, () => 1)).toBe(3_600_000);
  });
});

describe('error mapping', () => {
  it('decides by the Graph error code first, then by the HTTP status', () => {
    expect(failureOfErrorResponse(400, { error: { code: 130429 } })).toEqual({ code: 'whatsapp.130429', retryable: true, delivered: 'no' });
    expect(failureOfErrorResponse(400, { error: { code: 131047, fbtrace_id: 'AbC' } })).toEqual({ code: 'whatsapp.131047', retryable: false, delivered: 'no', fbtraceId: 'AbC' });
    expect(failureOfErrorResponse(401, { error: { code: 190, error_subcode: 463 } })).toEqual({ code: 'whatsapp.190', retryable: true, delivered: 'no', accountProblem: true, subcode: 463 });
    expect(failureOfErrorResponse(502, { error: { code: 999999 } })).toMatchObject({ retryable: true });
    expect(failureOfErrorResponse(429, undefined)).toEqual({ code: 'http.429', retryable: true, delivered: 'no' });
    expect(failureOfErrorResponse(403, 'Forbidden')).toEqual({ code: 'http.403', retryable: false, delivered: 'no' });
  });

  it('keeps a fbtrace_id only when it looks like one', () => {
    expect(failureOfErrorResponse(400, { error: { code: 100, fbtrace_id: 'x y <script>' } })).not.toHaveProperty('fbtraceId');
  });

  it('tells a request that never left from one whose outcome is unknown', () => {
    const socketError = (code: string) => Object.assign(new Error(code), { code });
    expect(failureOfTransportError(socketError('ECONNREFUSED'))).toEqual({ code: 'transport.unreachable', retryable: true, delivered: 'no' });
    expect(failureOfTransportError(socketError('ENOTFOUND'))).toMatchObject({ delivered: 'no' });
    expect(failureOfTransportError(socketError('ECONNRESET'))).toEqual({ code: 'transport.connection_lost', retryable: true, delivered: 'unknown' });
    expect(failureOfTransportError(Object.assign(new Error('slow'), { name: 'TimeoutError' }))).toEqual({ code: 'transport.timeout', retryable: true, delivered: 'unknown' });
  });
});
