import { describe, expect, it } from '@jest/globals';
import { BadRequestException, HttpException } from '@nestjs/common';
import { InvalidRequestException, toProblem } from '../../../src/platform/http/problem.js';
import { withoutStackTrace } from '../../../src/platform/http/stackless.js';
import { TooManyRequestsException } from '../../../src/platform/http/rate-limit.js';

const frames = (error: Error) => (error.stack ?? '').split('\n').filter((line) => line.startsWith('    at '));

describe('client-error exceptions made without a stack trace', () => {
  it('makes InvalidRequestException without frames, still a BadRequestException', () => {
    const error = new InvalidRequestException([{ path: 'a', message: 'a is wrong' }]);
    expect(frames(error)).toEqual([]);
    expect(error).toBeInstanceOf(InvalidRequestException);
    expect(error).toBeInstanceOf(BadRequestException);
    expect(error.constructor).toBe(InvalidRequestException);
    expect(error.problems).toEqual([{ path: 'a', message: 'a is wrong' }]);
    expect(toProblem(error).status).toBe(400);
  });

  it('makes TooManyRequestsException without frames, still an HttpException', () => {
    const error = new TooManyRequestsException(3, 'This API key may make 1 request(s) per second');
    expect(frames(error)).toEqual([]);
    expect(error).toBeInstanceOf(TooManyRequestsException);
    expect(error).toBeInstanceOf(HttpException);
    expect(error.constructor).toBe(TooManyRequestsException);
    expect(error.retryAfterSeconds).toBe(3);
    expect(error.getStatus()).toBe(429);
    expect(toProblem(error).headers).toEqual({ 'retry-after': '3' });
  });

  it('makes subclasses without frames too, and restores the limit even when construction throws', () => {
    const limit = Error.stackTraceLimit;
    class Narrower extends InvalidRequestException {}
    expect(frames(new Narrower([]))).toEqual([]);
    expect(new Narrower([])).toBeInstanceOf(InvalidRequestException);
    class Failing extends TooManyRequestsException {
      constructor() {
        super(1, 'This API key may make 1 request(s) per second');
        throw new Error('failed after super');
      }
    }
    expect(() => new Failing()).toThrow('failed after super');
    expect(Error.stackTraceLimit).toBe(limit);
    // Other errors keep their stack.
    expect(frames(new Error('ordinary')).length).toBeGreaterThan(0);
  });

  it('withoutStackTrace makes any error without frames', () => {
    expect(frames(withoutStackTrace(() => new BadRequestException('no')))).toEqual([]);
  });
});
