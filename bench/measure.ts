import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';

export interface Measurement {
  name: string;
  /** Operations per second on this one thread (one core), the median of the rounds. */
  perSecond: number;
  /** Mean microseconds per operation at that median. */
  microseconds: number;
}

/**
 * Runs `operation` in rounds of at least `roundMs` after a warm-up and keeps the median round:
 * one slow round (a GC, the other core busy) does not move the result.
 */
export async function measure(name: string, operation: () => unknown, options: { rounds?: number; roundMs?: number } = {}): Promise<Measurement> {
  const rounds = options.rounds ?? 7;
  const roundMs = options.roundMs ?? 500;
  const run = async (ms: number) => {
    let count = 0;
    const start = performance.now();
    let elapsed = 0;
    while (elapsed < ms) {
      const result = operation();
      if (result instanceof Promise) await result;
      count++;
      elapsed = performance.now() - start;
    }
    return count / (elapsed / 1000);
  };
  await run(roundMs);
  const rates: number[] = [];
  for (let i = 0; i < rounds; i++) rates.push(await run(roundMs));
  rates.sort((a, b) => a - b);
  const perSecond = rates[Math.floor(rates.length / 2)]!;
  return { name, perSecond, microseconds: 1e6 / perSecond };
}

export function machine(): string {
  const cpu = cpus()[0];
  return `${cpus().length} x ${cpu?.model ?? 'unknown CPU'}, Node ${process.version}, ${process.platform}/${process.arch}`;
}

export function table(rows: Measurement[], baseline: Measurement, rate = 'per second (one core)'): string {
  const lines = [`| Measurement | ${rate} | µs each | vs. baseline |`, '|---|---:|---:|---:|'];
  for (const row of rows) {
    lines.push(`| ${row.name} | ${Math.round(row.perSecond).toLocaleString('en-US')} | ${row.microseconds.toFixed(1)} | ${(row.perSecond / baseline.perSecond).toFixed(3)}x |`);
  }
  return lines.join('\n');
}

export const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
