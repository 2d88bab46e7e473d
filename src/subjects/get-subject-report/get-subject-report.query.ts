import { Inject } from '@nestjs/common';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { AuditLogService } from '../../audit/audit-log.service.js';
import { subjectPseudonym } from '../../audit/domain/pseudonym.js';
import { AuditEntryEntity } from '../../audit/infrastructure/audit.entities.js';
import { SubjectKeyService } from '../../audit/subject-keys.service.js';
import type { SubjectRef } from '../../consent/subject.js';
import { Traced } from '../../platform/observability/traced.js';
import { PolicyRegistry } from '../../policy/policy-registry.js';
import { retentionMs } from '../../policy/domain/retention.js';
import { decodeSubjectReport, type PoliciesKnown, type SubjectReport } from './subject-report.js';
import { TransactionRunner } from '../../platform/database/transaction-runner.js';

export class GetSubjectReportQuery extends Query<SubjectReport> {
  constructor(readonly subject: SubjectRef) {
    super();
  }
}

const PAGE = 1000;

/**
 * Finds every entry that names the person's pseudonym (recomputed with their key; sluice keeps no
 * index from person to entries) and decodes it for them. Without a key (never seen, or erased)
 * the report is empty: nothing in the log can be tied to them.
 */
@QueryHandler(GetSubjectReportQuery)
export class GetSubjectReportHandler implements IQueryHandler<GetSubjectReportQuery> {
  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(SubjectKeyService) private readonly subjectKeys: SubjectKeyService,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(PolicyRegistry) private readonly policies: PolicyRegistry,
  ) {}

  @Traced('sluice.subject.report', { attributes: ({ subject }: GetSubjectReportQuery) => ({ 'sluice.subject.type': subject.type }) })
  async execute({ subject }: GetSubjectReportQuery): Promise<SubjectReport> {
    const now = new Date();
    const checkpoint = await this.auditLog.latestCheckpoint();
    const base = { subject, generatedAt: now.toISOString(), log: { size: checkpoint?.treeSize ?? 0, checkpoint: checkpoint?.note ?? null } };
    const key = await this.subjectKeys.existingKey(this.transactions.reader.manager, subject);
    if (!key) return { ...base, found: false, consents: [], crossings: [], deliveries: [] };

    const pseudonym = subjectPseudonym(key, subject);
    const contains = this.transactions.reader.options.type === 'postgres' ? 'position(:needle in e.entry) > 0' : 'instr(e.entry, :needle) > 0';
    const entries: (Record<string, unknown> & { kind: string; index: number; time: string })[] = [];
    for (let after = -1; ; ) {
      // Quoted, so a pseudonym never matches inside a longer one.
      const rows = await this.transactions.reader
        .getRepository(AuditEntryEntity)
        .createQueryBuilder('e')
        .select(['e.index', 'e.entry'])
        .where(contains, { needle: `"${pseudonym}"` })
        .andWhere('e.index > :after', { after })
        .orderBy('e.index', 'ASC')
        .take(PAGE)
        .getMany();
      for (const row of rows) entries.push(JSON.parse(row.entry) as (typeof entries)[number]);
      if (rows.length < PAGE) break;
      after = rows.at(-1)!.index;
    }
    const { bundle } = this.policies;
    const retention = new Map(bundle.policies.map((p) => [p.name, p.retention ? retentionMs(p.retention) : undefined]));
    const policies: PoliciesKnown = {
      retentionOf: (name) => (name ? retention.get(name) : undefined),
      asksRecipientConsent: (name, hash) => (hash === bundle.hash ? bundle.policies.some((p) => p.name === name && p.recipientConsent !== undefined) : undefined),
    };
    return { ...base, found: true, ...decodeSubjectReport(pseudonym, key, entries, policies, now) };
  }
}
