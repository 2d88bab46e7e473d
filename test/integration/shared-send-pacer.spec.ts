import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { LATENESS_TOLERANCE_MS, SharedSendPacer } from '../../src/delivery/send-pacer.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

/**
 * Replicas share the phone number's send rate through PostgreSQL, and map its slots onto their own
 * clocks through an estimate of the clocks' offset. A slot can be kept only if that estimate is
 * tight: its window is narrowed by the error on both sides. A replica whose first reservation
 * took a slow round trip (just started, a busy database) reads the clock again rather than
 * handing out slots no request could ever start in.
 */
describe('the shared send pacer on PostgreSQL', () => {
  const run = process.env.CI === 'true' || process.env.SLUICE_TEST_POSTGRES === 'available' ? it : it.skip;
  let sluice: RunningApp | undefined;

  beforeAll(async () => {
    if (process.env.CI === 'true' || process.env.SLUICE_TEST_POSTGRES === 'available') sluice = await startTestApp('postgres');
  });
  afterAll(async () => {
    await sluice?.close();
  });

  /** The gateway's data source, with its next query held `delayMs` before it is sent. */
  function slowOnce(dataSource: DataSource, delayMs: number): DataSource {
    let delay = delayMs;
    const slow = Object.create(dataSource) as DataSource;
    slow.query = async (...args: Parameters<DataSource['query']>) => {
      const wait = delay;
      delay = 0;
      if (wait > 0) await sleep(wait);
      return dataSource.query(...args);
    };
    return slow;
  }

  run('keeps its slots usable after a slow first round trip', async () => {
    const pacer = new SharedSendPacer(slowOnce(sluice!.app.get(DataSource), 4 * LATENESS_TOLERANCE_MS), 'pacer-test-phone', 20);
    const slots = await pacer.reserve(3);
    for (const slot of slots) expect(slot.deadline - slot.notBefore).toBeGreaterThan(0);
    // And a request does get its turn in the first of them.
    expect(await pacer.waitForTurn({ ...slots[0]!, latestStart: performance.now() + 5_000 })).toBe(true);
  });
});
