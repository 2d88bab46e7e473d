import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../../src/platform/config/config.js';

describe('rate limit, CORS and HSTS settings', () => {
  it('defaults to 20 requests per second per key in bursts of 40, CORS closed, HSTS for a year', () => {
    expect(loadConfig({}, '/srv/sluice')).toMatchObject({
      rateLimit: { perSecond: 20, burst: 40 },
      corsOrigins: [],
      hsts: { maxAge: 31536000, includeSubDomains: false },
    });
  });

  it('reads them from the environment', () => {
    const config = loadConfig({
      RATE_LIMIT_PER_SECOND: '5',
      RATE_LIMIT_BURST: '1',
      CORS_ORIGINS: ' https://intranet.example.com , http://localhost:8080',
      HSTS_MAX_AGE: '0',
      HSTS_INCLUDE_SUBDOMAINS: 'true',
    });
    expect(config).toMatchObject({
      rateLimit: { perSecond: 5, burst: 1 },
      corsOrigins: ['https://intranet.example.com', 'http://localhost:8080'],
      hsts: { maxAge: 0, includeSubDomains: true },
    });
  });

  it('names every bad value', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({
        RATE_LIMIT_PER_SECOND: '0',
        RATE_LIMIT_BURST: 'lots',
        CORS_ORIGINS: 'https://ok.example.com,*,https://x.example.com/path,ftp://files.example.com',
        HSTS_MAX_AGE: '-1',
        HSTS_INCLUDE_SUBDOMAINS: 'yes',
      });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.problems).toEqual([
      'RATE_LIMIT_PER_SECOND must be an integer from 1 to 1000000 (requests per second per API key)',
      'RATE_LIMIT_BURST must be an integer from 1 to 1000000 (requests an API key may make at once)',
      'CORS_ORIGINS must be origins separated by commas, e.g. https://intranet.example.com; not an origin: *, https://x.example.com/path, ftp://files.example.com',
      'HSTS_MAX_AGE must be an integer number of seconds from 0 (no header) to 1000000000',
      'HSTS_INCLUDE_SUBDOMAINS must be "true" or "false"',
    ]);
  });

  it('limits failed authentications to 30 a minute per client address, in bursts of 20, unless told otherwise', () => {
    expect(loadConfig({}).authFailureLimit).toEqual({ perMinute: 30, burst: 20 });
    expect(loadConfig({ AUTH_FAILURES_PER_MINUTE: '6', AUTH_FAILURE_BURST: '1' }).authFailureLimit).toEqual({ perMinute: 6, burst: 1 });
    expect(() => loadConfig({ AUTH_FAILURES_PER_MINUTE: '0', AUTH_FAILURE_BURST: '2.5' })).toThrow(
      /AUTH_FAILURES_PER_MINUTE must be an integer from 1 to 1000000 \(requests with an invalid API key per minute per client address\)[\s\S]*AUTH_FAILURE_BURST must be an integer from 1 to 1000000/,
    );
  });
});
