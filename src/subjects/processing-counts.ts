import { type DataSource, MoreThan } from 'typeorm';
import { AuditEntryEntity } from '../audit/infrastructure/audit.entities.js';
import type { ProcessingCounts } from './records-of-processing.js';

const PAGE = 2000;

/**
 * Counts decisions, recipients and messages per policy in [since, until), read page by page from
 * the log. A message counts in the period it was sent in, under the policy of its share, whenever
 * that share was decided.
 */
export async function countProcessing(dataSource: DataSource, since: Date, until: Date): Promise<ProcessingCounts> {
  const counts: ProcessingCounts = { since: since.toISOString(), until: until.toISOString(), byPolicy: {}, denialsWithoutPolicy: 0, erasures: 0 };
  const policyOfShare = new Map<string, string>();
  const repo = dataSource.getRepository(AuditEntryEntity);
  for (let after = -1; ; ) {
    const rows = await repo.find({ select: { index: true, entry: true }, where: { index: MoreThan(after) }, order: { index: 'ASC' }, take: PAGE });
    for (const row of rows) {
      const entry = JSON.parse(row.entry) as Record<string, unknown> & { kind: string; time: string };
      const name = entry.kind === 'share.decided' ? (entry.policy as { name: string | null }).name : null;
      if (name !== null) policyOfShare.set(String(entry.share), name);
      if (entry.time < counts.since || entry.time >= counts.until) continue;
      if (entry.kind === 'share.decided') {
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
      } else if (entry.kind === 'message.sent') {
        const policy = policyOfShare.get(String(entry.share));
        if (policy) countsOf(counts, policy).messagesSent++;
      } else if (entry.kind === 'subject.erased') {
        counts.erasures++;
      }
    }
    if (rows.length < PAGE) break;
    after = rows.at(-1)!.index;
  }
  return counts;
}

function countsOf(counts: ProcessingCounts, policy: string): ProcessingCounts['byPolicy'][string] {
  return (counts.byPolicy[policy] ??= { decisions: 0, accepted: 0, partiallyAccepted: 0, denied: 0, recipientsAllowed: 0, messagesSent: 0 });
}
