/** An ISO 8601 duration of years, months and days (P2Y, P18M, P30D) in milliseconds, calendar-averaged. */
export function retentionMs(duration: string): number {
  const match = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$/.exec(duration);
  if (!match || duration === 'P') throw new RangeError(`not a retention period: ${duration}`);
  const [, years = '0', months = '0', days = '0'] = match;
  const DAY = 86_400_000;
  return Number(years) * 365.2425 * DAY + Number(months) * 30.436875 * DAY + Number(days) * DAY;
}

/**
 * The shortest audit retention a policy may set: a controller has a month to answer a subject
 * access request (GDPR Art. 12(3)), and the answer needs the keys a shorter retention destroys.
 */
export const MINIMUM_RETENTION_DAYS = 30;
