import { type DataSource, In, MoreThan } from 'typeorm';
import { AuditEntryEntity } from '../audit/infrastructure/audit.entities.js';
import { inGroupsOf } from '../platform/database/sql.js';
import type { ProcessingCounts } from './records-of-processing.js';

const PAGE = 2000;
/** How far apart the clocks of the replicas that write and sequence entries may be. */
const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * Counts decisions, recipients and messages per policy in [since, until), read page by page from
 * the log. A message counts in the period it was sent in, under the policy of its share, whenever
 * that share was decided. Reading starts at the period: an entry's time is when it was written,
 * before it was sequenced, so none of the period was sequenced earlier than `since` (less the
 * clocks' skew). It goes on to the end of the log, as one written in the period may have been
 * sequenced much later (its sequencer down). What it holds is the counts and the decisions whose
 * messages were sent in the period, not the log.
 */
export async function countProcessing(dataSource: DataSource, since: Date, until: Date): Promise<ProcessingCounts> {
  const counts: ProcessingCounts = { since: since.toISOString(), until: until.toISOString(), byPolicy: {}, denialsWithoutPolicy: 0, erasures: 0 };
  /** Messages sent in the period, by the entry of the decision they were sent under. */
  const sentUnder = new Map<string, number>();
  /**
   * Messages queued again after WhatsApp reported their copy failed (a message.status with
   * final: false): each has a message.sent per copy, and counts once, for its first.
   */
  const sentAgain = new Set<string>();
  /** Messages with a copy sent in the period: only such a copy can be reported failed and replaced. */
  const sentOnce = new Set<string>();
  const repo = dataSource.getRepository(AuditEntryEntity);
  const start = await firstSequencedFrom(dataSource, new Date(since.getTime() - CLOCK_SKEW_MS));
  for (let after = start - 1; ; ) {
    const rows = await repo.find({ select: { index: true, entry: true }, where: { index: MoreThan(after) }, order: { index: 'ASC' }, take: PAGE });
    for (const row of rows) {
      const entry = JSON.parse(row.entry) as Record<string, unknown> & { kind: string; time: string };
      if (entry.time < counts.since || entry.time >= counts.until) continue;
      if (entry.kind === 'share.decided') {
        const name = (entry.policy as { name: string | null }).name;
        if (name === null) {
          counts.denialsWithoutPolicy++;
          continue;
        }
        const policy = countsOf(counts, name);
        policy.decisions++;
        if (entry.status === 'accepted') policy.accepted++;
        else if (entry.status === 'partially_accepted') policy.partiallyAccepted++;
        else policy.denied++;
        policy.recipientsAllowed += ((entry.recipients ?? []) as { decision: string }[]).filter((r) => r.decision === 'allowed').length;
      } else if (entry.kind === 'message.status' && entry.final === false) {
        // A failed report on a copy whose answer was lost (a timeout) leaves the message unsent: its next send is its first.
        if (sentOnce.has(String(entry.outbox))) sentAgain.add(String(entry.outbox));
      } else if (entry.kind === 'message.sent') {
        // A later copy (`copy`, or in entries written before it, one after a failed report seen here).
        const later = typeof entry.copy === 'number' || sentAgain.has(String(entry.outbox));
        sentOnce.add(String(entry.outbox));
        if (later) continue;
        // Older entries name their decision by log index.
        const decision = typeof entry.decision === 'number' ? `#${entry.decision}` : String(entry.decision);
        sentUnder.set(decision, (sentUnder.get(decision) ?? 0) + 1);
      } else if (entry.kind === 'subject.erased' && entry.reason !== 'retention') {
        // Erasures on request (Art. 17); a retention sweep destroys keys on its own account.
        counts.erasures++;
      }
    }
    if (rows.length < PAGE) break;
    after = rows.at(-1)!.index;
  }
  const decisions = [...sentUnder.keys()];
  const byId = decisions.filter((d) => !d.startsWith('#'));
  const byIndex = decisions.filter((d) => d.startsWith('#')).map((d) => Number(d.slice(1)));
  const policyOf = (text: string) => ((JSON.parse(text) as { policy?: { name: string | null } }).policy ?? { name: null }).name;
  for (const group of inGroupsOf(byId)) {
    for (const row of await repo.find({ select: { id: true, entry: true }, where: { id: In(group) } })) {
      const name = policyOf(row.entry);
      if (name !== null) countsOf(counts, name).messagesSent += sentUnder.get(row.id)!;
    }
  }
  for (const group of inGroupsOf(byIndex)) {
    for (const row of await repo.find({ select: { index: true, entry: true }, where: { index: In(group) } })) {
      const name = policyOf(row.entry);
      if (name !== null) countsOf(counts, name).messagesSent += sentUnder.get(`#${row.index}`)!;
    }
  }
  return counts;
}

/**
 * The index of the first entry sequenced at or after `cutoff` (the log's size if none), by binary
 * search: the log is sequenced in index order.
 */
export async function firstSequencedFrom(dataSource: DataSource, cutoff: Date): Promise<number> {
  const repo = dataSource.getRepository(AuditEntryEntity);
  const at = cutoff.toISOString();
  const last = await repo.findOne({ select: { index: true }, where: {}, order: { index: 'DESC' } });
  let low = 0;
  let high = last ? last.index + 1 : 0;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    const row = await repo.findOneOrFail({ select: { createdAt: true }, where: { index: middle } });
    if (row.createdAt < at) low = middle + 1;
    else high = middle;
  }
  return low;
}

function countsOf(counts: ProcessingCounts, policy: string): ProcessingCounts['byPolicy'][string] {
  return (counts.byPolicy[policy] ??= { decisions: 0, accepted: 0, partiallyAccepted: 0, denied: 0, recipientsAllowed: 0, messagesSent: 0 });
}
