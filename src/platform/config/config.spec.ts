import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from './config.js';

const pem = (type: 'ed25519' | 'x25519') =>
  (type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('x25519')).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

describe('loadConfig', () => {
  it('gives the embedded defaults with an empty environment', () => {
    const config = loadConfig({}, '/srv/sluice');
    expect(config).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      database: { type: 'sqlite', path: '/srv/sluice/data/sluice.db' },
      dataDir: '/srv/sluice/data',
      policiesDir: '/srv/sluice/policies',
      auditLogOrigin: 'sluice.local/audit',
      whatsappTransport: 'sandbox',
      deliveryWorkerEnabled: true,
    });
    expect(config.auditSigningKey).toBeUndefined();
  });

  it('switches to PostgreSQL and then requires the shared keys', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgres://u@h/db' })).toThrow(/AUDIT_SIGNING_KEY is required[\s\S]*SLUICE_MASTER_KEY is required/);
    const config = loadConfig({ DATABASE_URL: 'postgres://u@h/db', AUDIT_SIGNING_KEY: pem('ed25519'), SLUICE_MASTER_KEY: randomBytes(32).toString('base64') });
    expect(config.database).toEqual({ type: 'postgres', url: 'postgres://u@h/db' });
    expect(config.auditSigningKey?.asymmetricKeyType).toBe('ed25519');
  });

  it('names every problem at once', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({
        PORT: 'eighty',
        DATABASE_URL: 'mysql://x',
        AUDIT_SIGNING_KEY: pem('x25519'),
        SLUICE_MASTER_KEY: 'c2hvcnQ=',
        AUDIT_LOG_ORIGIN: 'has space',
        SLUICE_BOOTSTRAP_KEY: 'short',
        WHATSAPP_TRANSPORT: 'carrier-pigeon',
        DELIVERY_POLL_MS: '1',
        DELIVERY_WORKER: 'maybe',
        LOG_LEVEL: 'loud',
      });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = error!.problems.join('\n');
    for (const name of ['PORT', 'DATABASE_URL', 'AUDIT_SIGNING_KEY must be an Ed25519', 'SLUICE_MASTER_KEY must be 32 bytes', 'AUDIT_LOG_ORIGIN', 'SLUICE_BOOTSTRAP_KEY', 'WHATSAPP_TRANSPORT', 'DELIVERY_POLL_MS', 'DELIVERY_WORKER', 'LOG_LEVEL']) {
      expect(text).toContain(name);
    }
  });

  it('rejects a signing key that is not PEM', () => {
    expect(() => loadConfig({ AUDIT_SIGNING_KEY: 'not a key' })).toThrow(/AUDIT_SIGNING_KEY is not a PEM/);
  });
});
