import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSource } from 'typeorm';

/**
 * A moment reserved for one message in the phone number's send rate, on this process's monotonic
 * clock (performance.now(), ms). The request must start between `notBefore` and `deadline`.
 */
export interface SendSlot {
  notBefore: number;
  deadline: number;
  /** Past this moment a missed slot is not replaced: the worker's claim on the message would not outlive the attempt. */
  latestStart?: number;
}

/**
 * How late a request may start after its slot. The slots are spaced by (1 s + this) / rate, so
 * that even with every start this late, no rate + 1 requests ever start within one second.
 */
export const LATENESS_TOLERANCE_MS = 25;
/**
 * How long before its slot a request's last check starts, at least: database reads, done before
 * the slot rather than inside its window. Checks that take longer (a database far away) start
 * twice the longest of the last RECENT_CHECKS ahead, up to half of LAST_CHECK_FRESH_MS.
 */
export const LAST_CHECK_LEAD_MS = 50;
/** A last check made at most this long before a slot still holds for it (after a missed one), rather than being made again. */
export const LAST_CHECK_FRESH_MS = 500;
/** How many of the latest last checks' durations set the lead: one fast check does not shorten it for the slower ones. */
const RECENT_CHECKS = 32;
/** How many readings of the database's clock a replica takes to narrow its error, when it has none or its estimate has aged. */
const CLOCK_READINGS = 5;
/** An estimate whose error has grown this much by drift since it was measured is measured again before the next reservation, at most every CLOCK_REFRESH_MS. */
const CLOCK_REFRESH_DRIFT_MS = 5;
const CLOCK_REFRESH_MS = 10_000;
/**
 * How fast the two clocks may drift apart: 100 ppm, two free-running quartz clocks at 50 ppm each
 * the other way (NTP keeps them far closer). A clock stepped, or slewed faster while NTP corrects
 * an offset, is not covered: counting that (up to 1,000 ppm) would narrow the windows of slots
 * many seconds ahead to nothing, while a request in excess of the rate meets WhatsApp's 130429,
 * which is retried.
 */
const CLOCK_DRIFT_PER_MS = 1 / 10_000;

export function slotSpacingMicros(ratePerSecond: number): number {
  return Math.ceil((1_000_000 + LATENESS_TOLERANCE_MS * 1000) / ratePerSecond);
}

/**
 * Pure slot arithmetic (GCRA): the next free moment, and the first of `count` slots taken from it.
 * `slackMicros` follows the slots: a replica that knows the schedule's clock only to within e
 * starts all its slots shifted alike by up to 2e, and the slack keeps the next reservation's
 * slots clear of that shift.
 */
export function takeSlots(nextFreeMicros: number, nowMicros: number, count: number, spacingMicros: number, slackMicros = 0): { firstMicros: number; nextFreeMicros: number } {
  const firstMicros = Math.max(nextFreeMicros, nowMicros);
  return { firstMicros, nextFreeMicros: firstMicros + count * spacingMicros + slackMicros };
}

/**
 * Keeps the messages of one phone number within its send rate (WHATSAPP_SEND_RATE, messages per
 * second). A worker reserves slots for a batch just before sending it; each request waits for its
 * slot and gives it up if it would start more than LATENESS_TOLERANCE_MS late (the process was
 * paused), taking a new one: a late start must not crowd the following second.
 */
export abstract class SendPacer {
  protected readonly spacingMicros: number;
  /** How far ahead of its slot the next last check starts (see LAST_CHECK_LEAD_MS). */
  protected checkLeadMs = LAST_CHECK_LEAD_MS;
  /** The latest last checks' durations (ms), oldest first. */
  private readonly checkDurations: number[] = [];
  /** Requests that need a new slot at about the same moment share one reservation. */
  private replacements: { count: number; slots: Promise<SendSlot[]> } | undefined;

  constructor(ratePerSecond: number) {
    this.spacingMicros = slotSpacingMicros(ratePerSecond);
  }

  /** Reserves `count` consecutive slots. */
  abstract reserve(count: number): Promise<SendSlot[]>;

  /**
   * Resolves true when the request may start now, false when no slot could be had before
   * `latestStart` or `lastCheck` said no. `lastCheck` runs shortly before the slot (see
   * LAST_CHECK_LEAD_MS), so that what it checks cannot change long before the request, nor its
   * own time make the request late; after a missed slot it runs again unless it was made within
   * LAST_CHECK_FRESH_MS of the new slot.
   */
  async waitForTurn(reserved: SendSlot | undefined, lastCheck?: () => Promise<boolean>): Promise<boolean> {
    const latestStart = reserved?.latestStart ?? Number.POSITIVE_INFINITY;
    let slot = reserved;
    let checkedAt = Number.NEGATIVE_INFINITY;
    for (;;) {
      slot ??= await this.replacementSlot();
      if (slot.notBefore > latestStart) return false;
      if (lastCheck && slot.notBefore - checkedAt > LAST_CHECK_FRESH_MS) {
        await sleepUntil(slot.notBefore - this.checkLeadMs);
        checkedAt = performance.now();
        const passed = await lastCheck();
        this.learnCheckDuration(performance.now() - checkedAt);
        if (!passed) return false;
      }
      await sleepUntil(slot.notBefore);
      if (performance.now() <= slot.deadline) return true;
      slot = undefined;
    }
  }

  private learnCheckDuration(durationMs: number): void {
    this.checkDurations.push(durationMs);
    if (this.checkDurations.length > RECENT_CHECKS) this.checkDurations.shift();
    this.checkLeadMs = Math.min(Math.max(LAST_CHECK_LEAD_MS, 2 * Math.max(...this.checkDurations)), LAST_CHECK_FRESH_MS / 2);
  }

  /**
   * A slot for a request without one (or whose slot passed): requests arriving before the next
   * turn of the event loop are served by one reservation, so a pause that made many miss their
   * slots costs one reservation, not one each.
   */
  private replacementSlot(): Promise<SendSlot> {
    if (!this.replacements) {
      const batch = { count: 0, slots: Promise.resolve<SendSlot[]>([]) };
      batch.slots = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.replacements = undefined;
        return this.reserve(batch.count);
      });
      this.replacements = batch;
    }
    const index = this.replacements.count++;
    return this.replacements.slots.then((slots) => slots[index]!);
  }

  /**
   * `count` slots from `firstAt` (ms, this process's clock, known to within `uncertaintyMs`), each
   * to be started within [notBefore, deadline]: never before the slot on the schedule's clock, and
   * at most the tolerance plus the slack reserved after them (twice `slackForMs`) after it.
   */
  protected slotsFrom(firstAt: number, count: number, uncertaintyMs = 0, slackForMs = 0): SendSlot[] {
    return slotWindows(firstAt, count, this.spacingMicros, uncertaintyMs, slackForMs);
  }
}

/**
 * The windows of `count` slots from `firstAt` (ms, this process's clock, which maps the schedule's
 * to within `uncertaintyMs`), with `slackForMs` reserved as 2 x slackForMs after them. A start in
 * its window is never before its slot on the schedule's clock and at most the tolerance late,
 * plus the shift all of the reservation's starts share, which the slack absorbs.
 */
export function slotWindows(firstAt: number, count: number, spacingMicros: number, uncertaintyMs: number, slackForMs: number): SendSlot[] {
  const spacingMs = spacingMicros / 1000;
  return Array.from({ length: count }, (_, i) => {
    const at = firstAt + i * spacingMs;
    const notBefore = at + uncertaintyMs;
    return { notBefore, deadline: Math.min(notBefore + LATENESS_TOLERANCE_MS, at - uncertaintyMs + LATENESS_TOLERANCE_MS + 2 * slackForMs) };
  });
}

/** Timers may fire up to a millisecond early against performance.now(): waits until it is time. */
async function sleepUntil(at: number): Promise<void> {
  for (let wait = at - performance.now(); wait > 0; wait = at - performance.now()) await sleep(wait);
}

/** The embedded default (SQLite) runs one process: its schedule lives in memory. */
export class LocalSendPacer extends SendPacer {
  private nextFreeMicros = 0;

  async reserve(count: number): Promise<SendSlot[]> {
    const taken = takeSlots(this.nextFreeMicros, performance.now() * 1000, count, this.spacingMicros);
    this.nextFreeMicros = taken.nextFreeMicros;
    return this.slotsFrom(taken.firstMicros / 1000, count);
  }
}

/**
 * Replicas on one PostgreSQL database share one schedule per phone number: a row holding the next
 * free moment on the database's clock, advanced atomically. Slots are mapped onto this process's
 * clock through an estimate of the offset between the two clocks (Cristian's algorithm: the
 * reservation with the shortest round trip lately gives the tightest bound, e). A reservation
 * takes 2e of slack after its slots, so its requests may start up to 2e later than their slots
 * on the database's clock (all alike: they share the estimate) without crowding the next
 * reservation's: however far away the database is, a slot's window stays as wide as the
 * tolerance, and it is never started early.
 */
export class SharedSendPacer extends SendPacer {
  /** Database clock minus this process's clock (ms), give or take errorMs, as measured at measuredAt (see errorAt). */
  private clock: { offsetMs: number; errorMs: number; measuredAt: number } | undefined;
  /** When the clock was last read again for a tighter estimate (see clockError). */
  private readAgainAt = Number.NEGATIVE_INFINITY;
  /**
   * The last reservation's round trip: slots start at least that far ahead, so they are still
   * ahead when the answer comes (and by the last check's lead beyond, so that it is made in time).
   */
  private leadMs = 0;

  constructor(
    private readonly dataSource: DataSource,
    private readonly phoneNumberId: string,
    ratePerSecond: number,
  ) {
    super(ratePerSecond);
  }

  async reserve(count: number): Promise<SendSlot[]> {
    // Room for the error as it will be at the last slot: drift goes on until then.
    const slackForMs = (await this.clockError()) + (this.leadMs + this.checkLeadMs + (count * this.spacingMicros) / 1000 + 1000) * CLOCK_DRIFT_PER_MS;
    const span = count * this.spacingMicros + Math.ceil(2 * slackForMs * 1000);
    const asked = performance.now();
    const [row] = (await this.dataSource.query(
      `INSERT INTO whatsapp_send_slots AS s (phone_number_id, next_slot_us)
         VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint + $3 + $2)
       ON CONFLICT (phone_number_id) DO UPDATE
         SET next_slot_us = GREATEST(s.next_slot_us, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint + $3) + $2
       RETURNING s.next_slot_us - $2 AS first_us, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now_us`,
      [this.phoneNumberId, span, Math.round((this.leadMs + this.checkLeadMs) * 1000)],
    )) as { first_us: string; now_us: string }[];
    const answered = performance.now();
    this.leadMs = Math.min(answered - asked + 1, 1000);
    const clock = this.learnClock(Number(row!.now_us) / 1000, asked, answered);
    const firstAt = Number(row!.first_us) / 1000 - clock.offsetMs;
    // The estimate goes on drifting until the last of these slots.
    const lastAt = firstAt + (count * this.spacingMicros) / 1000;
    return this.slotsFrom(firstAt, count, this.errorAt(lastAt), slackForMs);
  }

  /** The estimate's error at `at` (this process's clock): as measured, grown by drift since. */
  private errorAt(at: number): number {
    return this.clock!.errorMs + Math.max(0, at - this.clock!.measuredAt) * CLOCK_DRIFT_PER_MS;
  }

  /**
   * The error of the clock estimate, measured first if there is none yet or drift has grown it:
   * a few readings, as Cristian's algorithm takes, stopping once one is tight.
   */
  private async clockError(): Promise<number> {
    const now = performance.now();
    if (this.clock && (this.errorAt(now) - this.clock.errorMs < CLOCK_REFRESH_DRIFT_MS || now - this.readAgainAt < CLOCK_REFRESH_MS)) return this.errorAt(now);
    this.readAgainAt = now;
    let error = await this.readClock();
    for (let reading = 1; 2 * error >= LATENESS_TOLERANCE_MS && reading < CLOCK_READINGS; reading++) error = await this.readClock();
    return error;
  }

  /** One more reading of the database's clock, for a tighter estimate of the offset; returns the estimate's error now. */
  private async readClock(): Promise<number> {
    const asked = performance.now();
    const [row] = (await this.dataSource.query('SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now_us')) as { now_us: string }[];
    const answered = performance.now();
    this.learnClock(Number(row!.now_us) / 1000, asked, answered);
    return this.errorAt(answered);
  }

  /**
   * The database read its clock while the query ran: between `asked` and `answered` here. The
   * reading replaces the estimate if it is tighter than the estimate has become by drift.
   */
  private learnClock(databaseNowMs: number, asked: number, answered: number): { offsetMs: number } {
    const sample = { offsetMs: databaseNowMs - (asked + answered) / 2, errorMs: (answered - asked) / 2, measuredAt: answered };
    if (!this.clock || sample.errorMs <= this.errorAt(answered)) this.clock = sample;
    return this.clock;
  }
}
