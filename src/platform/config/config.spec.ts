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
    expect(config.database).toEqual({ type: 'postgres', url: 'postgres://u@h/db', poolSize: 10, connectTimeoutMs: 10_000 });
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

  describe('WhatsApp Cloud API', () => {
    const cloudApi = {
      WHATSAPP_TRANSPORT: 'cloud-api',
      WHATSAPP_PHONE_NUMBER_ID: '106540352242922',
      WHATSAPP_ACCESS_TOKEN: 'EAAG0123456789abcdefghij',
      WHATSAPP_APP_SECRET: '0123456789abcdef0123',
      WHATSAPP_VERIFY_TOKEN: 'verify-me-please',
    };

    it('needs no WhatsApp settings with the sandbox transport', () => {
      expect(loadConfig({}).whatsapp).toEqual({ cloudApi: undefined, appSecret: undefined, verifyToken: undefined });
    });

    it('reads the Cloud API settings with their defaults', () => {
      const config = loadConfig(cloudApi);
      expect(config.whatsappTransport).toBe('cloud-api');
      expect(config.whatsapp).toEqual({
        cloudApi: {
          apiBase: 'https://graph.facebook.com',
          apiVersion: 'v23.0',
          phoneNumberId: '106540352242922',
          accessToken: 'EAAG0123456789abcdefghij',
          sendRate: 80,
          timeoutMs: 10000,
        },
        appSecret: '0123456789abcdef0123',
        verifyToken: 'verify-me-please',
      });
      expect(config).toMatchObject({ deliveryMaxAttempts: 6, deliveryRetryBaseMs: 2000, deliveryLeaseMs: 30000 });
    });

    it('names every missing Cloud API setting at once', () => {
      expect(() => loadConfig({ WHATSAPP_TRANSPORT: 'cloud-api' })).toThrow(
        /WHATSAPP_PHONE_NUMBER_ID is required[\s\S]*WHATSAPP_ACCESS_TOKEN is required[\s\S]*WHATSAPP_APP_SECRET is required[\s\S]*WHATSAPP_VERIFY_TOKEN is required/,
      );
    });

    it.each([
      [{ WHATSAPP_API_BASE: 'http://graph.example.com' }, /WHATSAPP_API_BASE must use https/],
      [{ WHATSAPP_API_BASE: 'not a url' }, /WHATSAPP_API_BASE is not a URL/],
      [{ WHATSAPP_API_VERSION: '23' }, /WHATSAPP_API_VERSION must look like v23.0/],
      [{ WHATSAPP_PHONE_NUMBER_ID: '+31 6 1234' }, /WHATSAPP_PHONE_NUMBER_ID must be the numeric id/],
      [{ WHATSAPP_SEND_RATE: '0' }, /WHATSAPP_SEND_RATE must be an integer from 1 to 100000/],
      [{ WHATSAPP_APP_SECRET: 'short' }, /WHATSAPP_APP_SECRET must be at least 16/],
      [{ WHATSAPP_TIMEOUT_MS: '20000', DELIVERY_LEASE_MS: '30000' }, /DELIVERY_LEASE_MS must be at least 2 x WHATSAPP_TIMEOUT_MS \+ 3000 \(43000\)/],
      [{ DELIVERY_MAX_ATTEMPTS: '0' }, /DELIVERY_MAX_ATTEMPTS must be an integer from 1 to 50/],
    ])('refuses %j', (env, message) => {
      expect(() => loadConfig({ ...cloudApi, ...env })).toThrow(message);
    });

    it('lets plain HTTP reach a simulator on this machine only', () => {
      expect(loadConfig({ ...cloudApi, WHATSAPP_API_BASE: 'http://127.0.0.1:8089/' }).whatsapp.cloudApi?.apiBase).toBe('http://127.0.0.1:8089');
    });
  });

  it('runs one share group commit at a time unless PostgreSQL is told to run more', () => {
    expect(loadConfig({}).shareCommitsInFlight).toBe(1);
    const postgres = { DATABASE_URL: 'postgres://u@h/db', AUDIT_SIGNING_KEY: pem('ed25519'), SLUICE_MASTER_KEY: randomBytes(32).toString('base64') };
    expect(loadConfig({ ...postgres, SHARE_COMMITS_IN_FLIGHT: '2' }).shareCommitsInFlight).toBe(2);
    expect(() => loadConfig({ SHARE_COMMITS_IN_FLIGHT: '2' })).toThrow('SHARE_COMMITS_IN_FLIGHT above 1 needs PostgreSQL');
    expect(() => loadConfig({ ...postgres, SHARE_COMMITS_IN_FLIGHT: '9' })).toThrow('SHARE_COMMITS_IN_FLIGHT must be an integer from 1 to 8');
  });

  it('keeps a sent photo for 15 minutes unless told otherwise, and 0 releases it at the send', () => {
    expect(loadConfig({}).mediaHoldAfterSendMs).toBe(900_000);
    expect(loadConfig({ MEDIA_HOLD_AFTER_SEND_MS: '0' }).mediaHoldAfterSendMs).toBe(0);
    expect(() => loadConfig({ MEDIA_HOLD_AFTER_SEND_MS: '-1' })).toThrow('MEDIA_HOLD_AFTER_SEND_MS must be an integer from 0 to 86400000');
    expect(() => loadConfig({ MEDIA_HOLD_AFTER_SEND_MS: '86400001' })).toThrow('MEDIA_HOLD_AFTER_SEND_MS must be an integer from 0 to 86400000');
  });

  it('bounds how long a request may take to arrive and how long connections may hold up shutdown', () => {
    expect(loadConfig({})).toMatchObject({ httpRequestTimeoutMs: 30_000, shutdownGraceMs: 20_000 });
    expect(loadConfig({ HTTP_REQUEST_TIMEOUT_MS: '5000', SHUTDOWN_GRACE_MS: '1000' })).toMatchObject({ httpRequestTimeoutMs: 5000, shutdownGraceMs: 1000 });
    // 0 would cut off the answers in flight: shutdown would no longer finish them.
    expect(() => loadConfig({ HTTP_REQUEST_TIMEOUT_MS: '0', SHUTDOWN_GRACE_MS: '0' })).toThrow(
      /HTTP_REQUEST_TIMEOUT_MS must be an integer from 1000 to 600000[\s\S]*SHUTDOWN_GRACE_MS must be an integer from 1000 to 600000/,
    );
  });

  it('bounds the whole shutdown, beyond the grace period given to connections', () => {
    expect(loadConfig({})).toMatchObject({ shutdownTimeoutMs: 25_000 });
    expect(loadConfig({ SHUTDOWN_GRACE_MS: '1000', SHUTDOWN_TIMEOUT_MS: '3000' })).toMatchObject({ shutdownTimeoutMs: 3000 });
    expect(() => loadConfig({ SHUTDOWN_GRACE_MS: '30000' })).toThrow(/SHUTDOWN_TIMEOUT_MS must be greater than SHUTDOWN_GRACE_MS \(30000\)/);
    expect(() => loadConfig({ SHUTDOWN_TIMEOUT_MS: 'soon' })).toThrow(/SHUTDOWN_TIMEOUT_MS must be an integer from 1000 to 3600000/);
  });

  describe('MEDIA_FETCH_HOSTS', () => {
    it("allows Workplace's CDN on 443, https's own port, by default", () => {
      expect(loadConfig({}).mediaFetch.hosts).toEqual([{ name: 'fbcdn.net', port: 443 }, { name: 'fbsbx.com', port: 443 }]);
    });

    it('allows a host on 443 unless its entry names another port', () => {
      expect(loadConfig({ MEDIA_FETCH_HOSTS: ' CDN.Example.com:8443 , media.example.org, media.example.org:443,127.0.0.1:9443,xn--caf-dma.fr' }).mediaFetch.hosts).toEqual([
        { name: 'cdn.example.com', port: 8443 },
        { name: 'media.example.org', port: 443 },
        { name: 'media.example.org', port: 443 },
        { name: '127.0.0.1', port: 9443 },
        { name: 'xn--caf-dma.fr', port: 443 },
      ]);
    });

    it('names every entry that is not a host with a port from 1 to 65535', () => {
      const bad = ['cdn.example.com:0', 'cdn.example.com:65536', 'cdn.example.com:', 'cdn.example.com:https', ':8443', 'cdn.example.com:8443:1', '[::1]:8443', '::1', '.example.com', 'https://cdn.example.com', 'xn--a', 'cdn.xn--zz:8443'];
      let error: ConfigError | undefined;
      try {
        loadConfig({ MEDIA_FETCH_HOSTS: ['fbcdn.net:443', ...bad, 'cdn.example.com:65535'].join(',') });
      } catch (e) {
        error = e as ConfigError;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect(error!.problems).toEqual([
        `MEDIA_FETCH_HOSTS must be host names, each with an optional port from 1 to 65535, separated by commas, e.g. fbcdn.net,cdn.example.com:8443; not one: ${bad.join(', ')}`,
      ]);
    });

    it('takes an IP address only whole, as URLs write it: an entry ending in a number is one to a URL, and allows no subdomains', () => {
      const whole = ['192.0.2.10', '192.0.2.10:8443', '0.0.0.0', '1.example.com', 'cdn1.example.com', 'example.123a'];
      expect(loadConfig({ MEDIA_FETCH_HOSTS: whole.join(',') }).mediaFetch.hosts.map((h) => h.name)).toEqual(['192.0.2.10', '192.0.2.10', '0.0.0.0', '1.example.com', 'cdn1.example.com', 'example.123a']);
      const partial = ['0.0.1', '168.1.10', '0.0.1:8443', '127.1', '1', '0x7f.0.0.1', '127.0.0.01', '1.2.3.4.5', '1.2.3.256', '1.2.3.4.', 'cdn.123', 'cdn.0x1'];
      let error: ConfigError | undefined;
      try {
        loadConfig({ MEDIA_FETCH_HOSTS: ['fbcdn.net', ...partial, '::1', '192.0.2.10'].join(',') });
      } catch (e) {
        error = e as ConfigError;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect(error!.problems).toEqual([
        'MEDIA_FETCH_HOSTS must be host names, each with an optional port from 1 to 65535, separated by commas, e.g. fbcdn.net,cdn.example.com:8443; not one: ::1',
        `MEDIA_FETCH_HOSTS entries that end in a number are IPv4 addresses to a URL, so must be whole ones as URLs write them (four numbers from 0 to 255 without leading zeros, e.g. 192.0.2.10), each allowing that address only; not one: ${partial.join(', ')}`,
      ]);
    });
  });

  it('rejects a signing key that is not PEM', () => {
    expect(() => loadConfig({ AUDIT_SIGNING_KEY: 'not a key' })).toThrow(/AUDIT_SIGNING_KEY is not a PEM/);
  });
});
