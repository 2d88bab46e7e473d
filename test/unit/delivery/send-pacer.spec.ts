import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { performance } from 'node:perf_hooks';
import { LAST_CHECK_FRESH_MS, LAST_CHECK_LEAD_MS, LATENESS_TOLERANCE_MS, LocalSendPacer, type SendSlot, slotSpacingMicros, slotWindows, takeSlots } from '../../../src/delivery/send-pacer.js';

describe('send slots', () => {
  it('never fit rate + 1 starts into one second, even when each start is late by the tolerance', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.array(fc.record({ advanceMicros: fc.integer({ min: 0, max: 3_000_000 }), count: fc.integer({ min: 1, max: 300 }) }), { minLength: 1, maxLength: 20 }),
        (rate, reservations) => {
          const spacing = slotSpacingMicros(rate);
          let now = 0;
          let nextFree = 0;
          const starts: number[] = [];
          for (const { advanceMicros, count } of reservations) {
            now += advanceMicros;
            const taken = takeSlots(nextFree, now, count, spacing);
            nextFree = taken.nextFreeMicros;
            for (let i = 0; i < count; i++) starts.push(taken.firstMicros + i * spacing);
          }
          for (let i = 0; i + rate < starts.length; i++) {
            // The earlier start as late as allowed, the later one on time: still more than a second apart.
            expect(starts[i + rate]! - (starts[i]! + LATENESS_TOLERANCE_MS * 1000)).toBeGreaterThanOrEqual(1_000_000);
          }
        },
      ),
    );
  });

  it('keep starts within the windows a replica computes never early and never crowding, whatever its clock estimate', () => {
    // Replicas map the schedule (the database's clock) onto their own clocks through an estimate
    // of the offset, off by δ with |δ| <= e. Each reserves slack for the error b it knew before
    // reserving; e is what it knows after, larger or smaller. Any start within a window counts.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 500 }),
        fc.array(
          fc.record({
            advanceMs: fc.integer({ min: 0, max: 3_000 }),
            budgetMs: fc.integer({ min: 0, max: 100 }),
            errorMs: fc.integer({ min: 0, max: 100 }),
            offsetShare: fc.double({ min: -1, max: 1, noNaN: true }),
            offsetMs: fc.integer({ min: -10_000, max: 10_000 }),
            starts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 40 }),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        (rate, reservations) => {
          const spacing = slotSpacingMicros(rate);
          let now = 0;
          let nextFree = 0;
          const starts: number[] = [];
          for (const { advanceMs, budgetMs, errorMs, offsetShare, offsetMs, starts: picks } of reservations) {
            now += advanceMs * 1000;
            const taken = takeSlots(nextFree, now, picks.length, spacing, Math.ceil(2 * budgetMs * 1000));
            nextFree = taken.nextFreeMicros;
            // Schedule time = local time + offsetMs; the replica believes offsetMs + δ.
            const believed = offsetMs + offsetShare * errorMs;
            const windows = slotWindows(taken.firstMicros / 1000 - believed, picks.length, spacing, errorMs, budgetMs);
            windows.forEach((window, i) => {
              if (window.deadline < window.notBefore) return; // an empty window: the request takes a new slot
              const start = window.notBefore + picks[i]! * (window.deadline - window.notBefore) + offsetMs;
              expect(start).toBeGreaterThanOrEqual((taken.firstMicros + i * spacing) / 1000 - 1e-6);
              starts.push(start);
            });
          }
          starts.sort((a, b) => a - b);
          for (let i = 0; i + rate < starts.length; i++) expect(starts[i + rate]! - starts[i]!).toBeGreaterThanOrEqual(1_000 - 1e-6);
        },
      ),
    );
  });

  it('start no earlier than now, and after every slot already taken', () => {
    expect(takeSlots(0, 5_000, 3, 100)).toEqual({ firstMicros: 5_000, nextFreeMicros: 5_300 });
    expect(takeSlots(9_000, 5_000, 2, 100)).toEqual({ firstMicros: 9_000, nextFreeMicros: 9_200 });
    expect(takeSlots(9_000, 5_000, 2, 100, 30)).toEqual({ firstMicros: 9_000, nextFreeMicros: 9_230 });
  });
});

describe('waiting for a turn', () => {
  /** Counts reservations, to see a missed slot being replaced. */
  class CountingPacer extends LocalSendPacer {
    reservations = 0;
    override async reserve(count: number): Promise<SendSlot[]> {
      this.reservations++;
      return super.reserve(count);
    }
  }

  it('never lets a request start before its slot', async () => {
    const pacer = new LocalSendPacer(10);
    const slots = await pacer.reserve(3);
    for (const slot of slots) {
      expect(await pacer.waitForTurn(slot)).toBe(true);
      // A slot missed under load is replaced by a later one: never earlier than the reserved one.
      expect(performance.now()).toBeGreaterThanOrEqual(slot.notBefore);
    }
  });

  it('gives up a slot it was paused past, and takes a new one', async () => {
    const pacer = new CountingPacer(1000);
    const [slot] = await pacer.reserve(1);
    const pauseUntil = slot!.deadline + 5;
    while (performance.now() < pauseUntil); // the process is busy past the slot's tolerance
    expect(await pacer.waitForTurn(slot)).toBe(true);
    expect(pacer.reservations).toBe(2);
  });

  it('runs the last check shortly before the slot, and gives no turn when it says no', async () => {
    const pacer = new LocalSendPacer(10);
    const [, slot] = await pacer.reserve(2);
    let checkedAt = 0;
    expect(await pacer.waitForTurn(slot, async () => ((checkedAt = performance.now()), false))).toBe(false);
    expect(checkedAt).toBeGreaterThanOrEqual(slot!.notBefore - LAST_CHECK_LEAD_MS);
    expect(checkedAt).toBeLessThan(slot!.notBefore);
  });

  it('starts the request in its slot after a last check that took longer than the slot window', async () => {
    const pacer = new CountingPacer(10);
    const [, slot] = await pacer.reserve(2);
    // Slower than the 25 ms window, faster than the lead: done before the slot comes.
    const slowCheck = async () => (await new Promise((resolve) => setTimeout(resolve, LAST_CHECK_LEAD_MS / 2 + 5)), true);
    expect(await pacer.waitForTurn(slot, slowCheck)).toBe(true);
    expect(performance.now()).toBeGreaterThanOrEqual(slot!.notBefore);
    expect(pacer.reservations).toBe(1);
  });

  /** The times of the last checks made for one request whose first check outlasts its slot, at `rate` (which spaces the replacement slot 1 / rate away). */
  async function checksAfterAMissedSlot(rate: number): Promise<{ checks: number[]; reservations: number }> {
    const pacer = new CountingPacer(rate);
    const [slot] = await pacer.reserve(1);
    const checks: number[] = [];
    const slowOnce = async () => {
      checks.push(performance.now());
      if (checks.length === 1) while (performance.now() <= slot!.deadline + 5); // the check itself outlasts the slot
      return true;
    };
    expect(await pacer.waitForTurn(slot, slowOnce)).toBe(true);
    return { checks, reservations: pacer.reservations };
  }

  it('takes a new slot without checking again when a check still fresh made the request miss its slot', async () => {
    expect(await checksAfterAMissedSlot(1000)).toEqual({ checks: [expect.any(Number)], reservations: 2 });
  });

  it('checks again for a new slot further from the last check than it stays fresh', async () => {
    // The replacement slot is a second away: the first check would be stale by then.
    const { checks, reservations } = await checksAfterAMissedSlot(1);
    expect(reservations).toBe(2);
    expect(checks).toHaveLength(2);
    expect(checks[1]! - checks[0]!).toBeGreaterThan(LAST_CHECK_FRESH_MS);
  });

  it('starts the last check earlier once checks have taken longer than the lead, and a fast one does not undo that', async () => {
    const pacer = new CountingPacer(10);
    const slowCheck = async () => (await new Promise((resolve) => setTimeout(resolve, 80)), true);
    // The first check starts 50 ms ahead, takes 80 and makes its request miss the slot.
    const [first] = await pacer.reserve(1);
    expect(await pacer.waitForTurn(first, slowCheck)).toBe(true);
    expect(pacer.reservations).toBe(2);
    // A quick check in between (a message whose recipient needs no consent, say).
    const [quick] = await pacer.reserve(1);
    expect(await pacer.waitForTurn(quick, async () => true)).toBe(true);
    // The next slow one starts twice as far ahead as the longest lately took (160 ms), not 50 or
    // the quick one's (timers on a busy machine may fire late: at least 100 ms ahead).
    const [, , next] = await pacer.reserve(3);
    let checkedAt = 0;
    expect(await pacer.waitForTurn(next, async () => ((checkedAt = performance.now()), slowCheck()))).toBe(true);
    expect(checkedAt).toBeLessThanOrEqual(next!.notBefore - 100);
  });


  it('reports no turn when a replacement slot would start after the latest start', async () => {
    const pacer = new CountingPacer(1);
    const [slot] = await pacer.reserve(1);
    const late = { ...slot!, deadline: slot!.notBefore - 1, latestStart: performance.now() + 10 };
    // The missed slot's replacement is a full second (1 / rate) away: past latestStart.
    expect(await pacer.waitForTurn(late)).toBe(false);
  });
});
