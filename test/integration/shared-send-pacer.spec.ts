import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { LAST_CHECK_LEAD_MS, LATENESS_TOLERANCE_MS, SharedSendPacer, type SendSlot } from '../../src/delivery/send-pacer.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

/**
 * Replicas share the phone number's send rate through PostgreSQL, and map its slots onto their own
 * clocks through an estimate of the clocks' offset. A slot can be kept only if that estimate is
 * tight, or the reservation must leave room after its slots for the error: a replica whose first
 * round trip was slow (just started, a busy database) reads the clock again, and one whose
 * database is far away reserves that room, rather than handing out slots no request could ever
 * start in.
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

  /** The gateway's data source, every query held `delayMs` before it is sent: a database that far away. */
  function far(dataSource: DataSource, delayMs: number): DataSource {
    const remote = Object.create(dataSource) as DataSource;
    remote.query = async (...args: Parameters<DataSource['query']>) => {
      await sleep(delayMs);
      return dataSource.query(...args);
    };
    return remote;
  }

  class CountingPacer extends SharedSendPacer {
    reservations = 0;
    override async reserve(count: number): Promise<SendSlot[]> {
      this.reservations++;
      return super.reserve(count);
    }
  }

  run('keeps every slot usable and the rate kept, all replicas together, with one replica far from the database', async () => {
    const rate = 20;
    const dataSource = sluice!.app.get(DataSource);
    // Round trips of 40 ms and more: that replica knows the database's clock only to within 20 ms,
    // and its last check before each request (two reads, as the worker's) takes over 80 ms.
    const remote = far(dataSource, 40);
    let nearCheckMaxMs = 0;
    const replicas = [
      {
        pacer: new CountingPacer(dataSource, 'pacer-far-phone', rate),
        lastCheck: async () => {
          const started = performance.now();
          await dataSource.query('SELECT 1');
          await dataSource.query('SELECT 1');
          nearCheckMaxMs = Math.max(nearCheckMaxMs, performance.now() - started);
          return true;
        },
      },
      { pacer: new CountingPacer(remote, 'pacer-far-phone', rate), lastCheck: async () => (await remote.query('SELECT 1'), await remote.query('SELECT 1'), true) },
    ];
    const starts: number[] = [];
    const afterFirstBatch: number[] = [];
    const eventLoopDelay = monitorEventLoopDelay({ resolution: 5 });
    eventLoopDelay.enable();
    await Promise.all(
      replicas.map(async ({ pacer, lastCheck }, replica) => {
        for (let batch = 0; batch < 3; batch++) {
          const slots = await pacer.reserve(5);
          await Promise.all(
            slots.map(async (slot) => {
              expect(await pacer.waitForTurn({ ...slot, latestStart: performance.now() + 3_000 }, lastCheck)).toBe(true);
              starts.push(performance.now());
            }),
          );
          if (batch === 0) afterFirstBatch[replica] = pacer.reservations;
        }
      }),
    );
    eventLoopDelay.disable();
    // Once the far replica has seen how long its checks take, no slot is lost and replaced: each
    // replica reserves only its next two batches. On a machine busy with other suites a slot is
    // given up, as it must be, when this process was paused past the tolerance or the near
    // replica's check took longer than its lead: then one replacement each at most.
    const reserved = replicas.map(({ pacer }, replica) => pacer.reservations - afterFirstBatch[replica]!);
    const busy = eventLoopDelay.max / 1e6 > LATENESS_TOLERANCE_MS || nearCheckMaxMs > LAST_CHECK_LEAD_MS;
    if (busy) for (const count of reserved) expect([2, 3]).toContain(count);
    else expect(reserved).toEqual([2, 2]);
    starts.sort((a, b) => a - b);
    expect(starts).toHaveLength(30);
    // Times are taken just after each start (a few ms of event loop at most).
    for (let i = 0; i + rate < starts.length; i++) expect(starts[i + rate]! - starts[i]!).toBeGreaterThanOrEqual(995);
  });

  run('keeps its slots usable after a slow first round trip', async () => {
    const pacer = new SharedSendPacer(slowOnce(sluice!.app.get(DataSource), 4 * LATENESS_TOLERANCE_MS), 'pacer-test-phone', 20);
    const slots = await pacer.reserve(3);
    for (const slot of slots) expect(slot.deadline - slot.notBefore).toBeGreaterThan(0);
    // And a request does get its turn in the first of them.
    expect(await pacer.waitForTurn({ ...slots[0]!, latestStart: performance.now() + 5_000 })).toBe(true);
  });
});
