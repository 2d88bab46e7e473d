import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../../src/platform/config/config.js';

describe('delivery configuration', () => {
  it('pauses a minute after WhatsApp refused the business account, unless told otherwise', () => {
    expect(loadConfig({}).deliveryAccountPauseMs).toBe(60_000);
    expect(loadConfig({ DELIVERY_ACCOUNT_PAUSE_MS: '5000' }).deliveryAccountPauseMs).toBe(5000);
  });

  it('names a pause that is not a whole number of milliseconds from 10 to an hour', () => {
    for (const value of ['0', '3600001', 'soon', '1.5']) {
      expect(() => loadConfig({ DELIVERY_ACCOUNT_PAUSE_MS: value })).toThrow(ConfigError);
      try {
        loadConfig({ DELIVERY_ACCOUNT_PAUSE_MS: value });
      } catch (error) {
        expect((error as ConfigError).problems).toEqual(['DELIVERY_ACCOUNT_PAUSE_MS must be an integer from 10 to 3600000']);
      }
    }
  });
});
