import type { Transform } from './policy.js';

/**
 * The value transforms that need no key and no recogniser: mask, truncate, generalise (none
 * passes the value as is). Returns undefined when the value does not fit the transform (a
 * timestamp that is not one), so the field is dropped rather than sent half-understood.
 */
export function applyTransform(value: string, transform: Transform): string | undefined {
  switch (transform.kind) {
    case 'none':
      return value;
    case 'mask': {
      // Code points, not UTF-16 units: a mask never cuts an emoji in half.
      const chars = [...value];
      if (chars.length <= transform.keepFirst + transform.keepLast) return '*'.repeat(chars.length);
      return chars.map((c, i) => (i < transform.keepFirst || i >= chars.length - transform.keepLast ? c : '*')).join('');
    }
    case 'truncate': {
      const chars = [...value];
      return chars.length <= transform.length ? value : `${chars.slice(0, transform.length).join('').trimEnd()}…`;
    }
    case 'generalise': {
      const time = parseTimestamp(value);
      if (time === undefined) return undefined;
      const iso = new Date(time).toISOString();
      return transform.to === 'day' ? iso.slice(0, 10) : iso.slice(0, 7);
    }
    default:
      throw new Error(`transform ${transform.kind} is not a plain value transform`);
  }
}

/** ISO 8601 as Workplace writes it (2026-11-20T09:12:44+0000) or with a colon in the offset. */
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

function parseTimestamp(value: string): number | undefined {
  const match = TIMESTAMP.exec(value.trim());
  if (!match) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00', zone = 'Z'] = match;
  const offset = zone === 'Z' ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
  const time = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${offset}`);
  if (Number.isNaN(time)) return undefined;
  // Date.parse rolls 2026-02-31 over to March: refuse dates that do not exist.
  const check = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d)) return undefined;
  return time;
}
