import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { type ConfigError, loadConfig } from '../../../src/platform/config/config.js';

const URL = 'postgres://sluice@db.internal:5432/sluice';
const POSTGRES = {
  DATABASE_URL: URL,
  AUDIT_SIGNING_KEY: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  SLUICE_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
};

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (error) {
    return (error as ConfigError).problems;
  }
}

describe('database configuration', () => {
  it('gives PostgreSQL a pool of 10 and 10 s to connect or find a free connection, unless told otherwise', () => {
    expect(loadConfig(POSTGRES).database).toEqual({ type: 'postgres', url: URL, poolSize: 10, connectTimeoutMs: 10_000 });
    expect(loadConfig({ ...POSTGRES, DATABASE_POOL_SIZE: '40', DATABASE_CONNECT_TIMEOUT_MS: '2500' }).database).toEqual({ type: 'postgres', url: URL, poolSize: 40, connectTimeoutMs: 2500 });
  });

  it('names a pool size or a connect timeout out of range', () => {
    expect(problemsOf({ ...POSTGRES, DATABASE_POOL_SIZE: '0', DATABASE_CONNECT_TIMEOUT_MS: '50' })).toEqual([
      'DATABASE_POOL_SIZE must be an integer from 1 to 1000, got "0"',
      'DATABASE_CONNECT_TIMEOUT_MS must be an integer from 100 to 600000, got "50"',
    ]);
    expect(problemsOf({ ...POSTGRES, DATABASE_POOL_SIZE: 'many', DATABASE_CONNECT_TIMEOUT_MS: '2.5' })).toEqual([
      'DATABASE_POOL_SIZE must be an integer from 1 to 1000, got "many"',
      'DATABASE_CONNECT_TIMEOUT_MS must be an integer from 100 to 600000, got "2.5"',
    ]);
  });
});
