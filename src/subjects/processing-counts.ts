import { type DataSource, MoreThan } from 'typeorm';
import { AuditEntryEntity } from '../audit/infrastructure/audit.entities.js';
import type { ProcessingCounts } from './records-of-processing.js';

const PAGE = 2000;

/** Counts decisions, recipients and messages per policy in [since, until), read page by page from the log. */
export async function countProcessing(dataSource: DataSource, since: Date, until: Date): Promise<ProcessingCounts> {
  const counts: ProcessingCounts = { since: since.toISOString(), until: until.toISOString(), byPolicy: {}, denialsWithoutPolicy: 0, erasures: 0 };
  const policyOfShare = new Map<string, string>();
  const repo = dataSource.getRepository(AuditEntryEntity);
  for (let after = -1; ; ) {
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
        policyOfShare.set(String(entry.share), name);
        const policy = (counts.byPolicy[name] ??= { decisions: 0, accepted: 0, partiallyAccepted: 0, denied: 0, recipientsAllowed: 0, messagesSent: 0 });
        policy.decisions++;
        if (entry.status === 'accepted') policy.accepted++;
        else if (entry.status === 'partially_accepted') policy.partiallyAccepted++;
        else policy.denied++;
        policy.recipientsAllowed += ((entry.recipients ?? []) as { decision: string }[]).filter((r) => r.decision === 'allowed').length;
      } else if (entry.kind === 'message.sent') {
        const name = policyOfShare.get(String(entry.share));
        if (name && counts.byPolicy[name]) counts.byPolicy[name].messagesSent++;
      } else if (entry.kind === 'subject.erased') {
        counts.erasures++;
      }
    }
    if (rows.length < PAGE) break;
    after = rows.at(-1)!.index;
  }
  return counts;
}
