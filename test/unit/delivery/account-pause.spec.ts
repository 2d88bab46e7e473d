import { describe, expect, it } from '@jest/globals';
import { AccountPause } from '../../../src/delivery/account-pause.js';
import type { SluiceConfig } from '../../../src/platform/config/config.js';

const PAUSE_MS = 60_000;
const pause = () => new AccountPause({ deliveryAccountPauseMs: PAUSE_MS } as SluiceConfig);

describe('AccountPause', () => {
  it('claims freely until WhatsApp refuses the account, then pauses and probes with one message', () => {
    const account = pause();
    expect(account.isPaused()).toBe(false);
    expect(account.batchLimit()).toBeUndefined();
    account.refused('whatsapp.190', 'send');
    expect(account.isPaused()).toBe(true);
    expect(account.isPaused(Date.now() + PAUSE_MS + 1)).toBe(false);
    expect(account.batchLimit()).toBe(1);
    expect(Date.parse(account.resumesAt)).toBeGreaterThan(Date.now() + PAUSE_MS - 1_000);
  });

  it('ends a refusal at the send once the probe is answered, not on a message sent before the pause', () => {
    const account = pause();
    account.refused('whatsapp.190', 'send');
    // A message of the batch still in flight when the pause began.
    account.answered('out_before');
    expect(account.batchLimit()).toBe(1);
    account.claimed('out_probe');
    account.answered('out_probe');
    expect(account.batchLimit()).toBeUndefined();
    expect(account.isPaused()).toBe(false);
  });

  it('keeps a refusal reported by a status webhook until the probe is reached, pausing again after its send', () => {
    const account = pause();
    account.refused('whatsapp.131042', 'status');
    account.claimed('out_probe');
    account.answered('out_probe');
    // Taken at the send proves nothing of a payment issue: another pause, still one at a time.
    expect(account.isPaused()).toBe(true);
    expect(account.batchLimit()).toBe(1);
    account.reached('out_other');
    expect(account.batchLimit()).toBe(1);
    account.claimed('out_second_probe');
    // The first probe's report, however late, ends it.
    account.reached('out_probe');
    expect(account.batchLimit()).toBeUndefined();
    expect(account.isPaused()).toBe(false);
  });

  it('ignores reports and answers when no refusal is known', () => {
    const account = pause();
    account.claimed('out_a');
    account.answered('out_a');
    account.reached('out_a');
    expect(account.batchLimit()).toBeUndefined();
    expect(account.isPaused()).toBe(false);
  });
});
