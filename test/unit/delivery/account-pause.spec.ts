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

  it('keeps a refusal reported by a status webhook until a report about the probe\'s own copy, pausing again after its send', () => {
    const account = pause();
    account.refused('whatsapp.131042', 'status', new Date());
    account.claimed('out_probe');
    account.answered('out_probe', 'wamid.probe');
    // Taken at the send proves nothing of a payment issue: another pause, still one at a time.
    expect(account.isPaused()).toBe(true);
    expect(account.batchLimit()).toBe(1);
    // Another message's report, or one about an older copy of the probe, proves nothing either.
    account.reported('out_other', 'wamid.other');
    account.reported('out_probe', 'wamid.older_copy');
    expect(account.batchLimit()).toBe(1);
    account.claimed('out_second_probe');
    // The first probe's report, however late, ends it.
    account.reported('out_probe', 'wamid.probe');
    expect(account.batchLimit()).toBeUndefined();
    expect(account.isPaused()).toBe(false);
  });

  it('does not pause again for a late report of a refusal from before it resumed', () => {
    const account = pause();
    const refusedAt = new Date(Date.now() - 5_000);
    account.refused('whatsapp.190', 'send');
    account.claimed('out_probe');
    account.answered('out_probe', 'wamid.probe');
    expect(account.isPaused()).toBe(false);
    account.refused('whatsapp.131042', 'status', refusedAt);
    expect(account.isPaused()).toBe(false);
    expect(account.batchLimit()).toBeUndefined();
    // Stamped in whole seconds, in the second of the resume: a new refusal.
    account.refused('whatsapp.131042', 'status', new Date(Math.floor(Date.now() / 1000) * 1000));
    expect(account.isPaused()).toBe(true);
  });

  it('remembers a bounded number of probes', () => {
    const account = pause();
    account.refused('whatsapp.190', 'send');
    for (let i = 0; i < 25; i++) account.claimed(`out_${i}`);
    // The oldest were forgotten: their answers no longer end the pause; a recent one's does.
    account.answered('out_0');
    expect(account.batchLimit()).toBe(1);
    account.answered('out_24');
    expect(account.batchLimit()).toBeUndefined();
  });

  it('ignores reports and answers when no refusal is known', () => {
    const account = pause();
    account.claimed('out_a');
    account.answered('out_a', 'wamid.a');
    account.reported('out_a', 'wamid.a');
    expect(account.batchLimit()).toBeUndefined();
    expect(account.isPaused()).toBe(false);
  });
});
