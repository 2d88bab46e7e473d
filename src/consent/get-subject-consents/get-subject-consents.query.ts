import { Inject } from '@nestjs/common';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { AuditLogService } from '../../audit/audit-log.service.js';
import { ConsentLedger } from '../consent-ledger.js';
import type { SubjectRef } from '../subject.js';

export interface SubjectConsents {
  subject: SubjectRef;
  current: { purpose: string; status: 'granted' | 'withdrawn'; since: string; event: string }[];
  history: {
    id: string;
    purpose: string;
    status: 'granted' | 'withdrawn';
    evidence: Record<string, unknown>;
    recordedAt: string;
    audit: { entry: string; index: number | null };
  }[];
}

export class GetSubjectConsentsQuery extends Query<SubjectConsents> {
  constructor(readonly subject: SubjectRef) {
    super();
  }
}

@QueryHandler(GetSubjectConsentsQuery)
export class GetSubjectConsentsHandler implements IQueryHandler<GetSubjectConsentsQuery> {
  constructor(
    @Inject(ConsentLedger) private readonly ledger: ConsentLedger,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
  ) {}

  async execute({ subject }: GetSubjectConsentsQuery): Promise<SubjectConsents> {
    const { current, events } = await this.ledger.history(subject);
    const indices = await this.auditLog.indicesOf(events.map((e) => e.auditEntry));
    return {
      subject,
      current: current.map((s) => ({ purpose: s.purpose, status: s.status, since: s.updatedAt, event: s.eventId })),
      history: events.map((e) => ({
        id: e.id,
        purpose: e.purpose,
        status: e.status,
        evidence: e.evidence,
        recordedAt: e.recordedAt,
        // null only in the moment between the change and its sequencing.
        audit: { entry: e.auditEntry, index: indices.get(e.auditEntry) ?? null },
      })),
    };
  }
}
