import { Inject } from '@nestjs/common';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { AuditLogService } from '../../audit/audit-log.service.js';
import { subjectPseudonym } from '../../audit/domain/pseudonym.js';
import { SubjectKeyService } from '../../audit/subject-keys.service.js';
import { ConsentLedger } from '../../consent/consent-ledger.js';
import { subjectForms, type SubjectRef } from '../../consent/subject.js';
import { Traced } from '../../platform/observability/traced.js';
import { PolicyRegistry } from '../../policy/policy-registry.js';
import { retentionMs } from '../../policy/domain/retention.js';
import { type Crossing, decodeSubjectReport, type PoliciesKnown, type SubjectReport } from './subject-report.js';
import { TransactionRunner } from '../../platform/database/transaction-runner.js';

export class GetSubjectReportQuery extends Query<SubjectReport> {
  constructor(readonly subject: SubjectRef) {
    super();
  }
}

/**
 * Finds every entry that names the person's pseudonym (recomputed with their key; sluice keeps no
 * index from person to entries) and decodes it for them. Without a key (never seen, or erased)
 * the report is empty: nothing in the log can be tied to them. A WhatsApp contact known by two
 * forms of one number (whatsAppIdForms) has a key under each: the report holds what both name.
 */
@QueryHandler(GetSubjectReportQuery)
export class GetSubjectReportHandler implements IQueryHandler<GetSubjectReportQuery> {
  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(SubjectKeyService) private readonly subjectKeys: SubjectKeyService,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(PolicyRegistry) private readonly policies: PolicyRegistry,
    @Inject(ConsentLedger) private readonly consents: ConsentLedger,
  ) {}

  @Traced('sluice.subject.report', { attributes: ({ subject }: GetSubjectReportQuery) => ({ 'sluice.subject.type': subject.type }) })
  async execute({ subject }: GetSubjectReportQuery): Promise<SubjectReport> {
    const now = new Date();
    const checkpoint = await this.auditLog.latestCheckpoint();
    const report: SubjectReport = {
      subject,
      generatedAt: now.toISOString(),
      log: { size: checkpoint?.treeSize ?? 0, checkpoint: checkpoint?.note ?? null },
      found: false,
      consents: [],
      crossings: [],
      deliveries: [],
    };
    const { bundle } = this.policies;
    const retention = new Map(bundle.policies.map((p) => [p.name, p.retention ? retentionMs(p.retention) : undefined]));
    const policies: PoliciesKnown = {
      retentionOf: (name) => (name ? retention.get(name) : undefined),
      asksRecipientConsent: (name, hash) => (hash === bundle.hash ? bundle.policies.some((p) => p.name === name && p.recipientConsent !== undefined) : undefined),
    };
    const forms = subjectForms(subject);
    for (const form of forms) {
      const key = await this.subjectKeys.existingKey(this.transactions.reader.manager, form);
      if (!key) continue;
      const pseudonym = subjectPseudonym(key, form);
      const entries = await this.auditLog.entriesNaming(this.transactions.reader.manager, pseudonym);
      // The ledger's changes, opened with the key: what the log holds only as digests.
      const recorded = new Map((await this.consents.history(form)).events.map((e) => [e.id, { purpose: e.purpose, evidence: e.evidence }]));
      const decoded = decodeSubjectReport(pseudonym, key, entries, policies, now, recorded);
      report.found = true;
      report.consents.push(...decoded.consents);
      report.crossings.push(...decoded.crossings);
      report.deliveries.push(...decoded.deliveries);
    }
    // A decision naming both forms (a share to each) is one crossing, as the form asked for saw it,
    // with the roles and fields of both; everything in log order.
    const crossings = new Map<number, Crossing>();
    for (const crossing of report.crossings) {
      const first = crossings.get(crossing.index);
      if (!first) {
        crossings.set(crossing.index, crossing);
        continue;
      }
      first.roles = [...new Set([...first.roles, ...crossing.roles])];
      first.crossed = first.crossed.map((field, i) => ({ ...field, aboutYou: field.aboutYou || crossing.crossed[i]!.aboutYou }));
      first.yourData = [...new Set([...first.yourData, ...crossing.yourData])];
    }
    report.crossings = [...crossings.values()];
    for (const list of [report.consents, report.crossings, report.deliveries] as { index: number }[][]) list.sort((a, b) => a.index - b.index);
    return report;
  }
}
