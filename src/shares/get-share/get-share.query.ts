import { Inject, NotFoundException } from '@nestjs/common';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { AuditLogService } from '../../audit/audit-log.service.js';
import { OutboxMessageEntity } from '../../delivery/infrastructure/delivery.entities.js';
import { ShareEntity, ShareRecipientEntity } from '../infrastructure/share.entities.js';
import type { ShareDocument } from '../share-document.js';
import { TransactionRunner } from '../../platform/database/transaction-runner.js';

export class GetShareQuery extends Query<ShareDocument> {
  constructor(readonly shareId: string) {
    super();
  }
}

@QueryHandler(GetShareQuery)
export class GetShareHandler implements IQueryHandler<GetShareQuery> {
  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
  ) {}

  /** The decision document plus each recipient's delivery state as it is now, and why a failed delivery failed. */
  async execute({ shareId }: GetShareQuery): Promise<ShareDocument> {
    // Only what sluice issues (shr_ and 12 random bytes in base64url) is looked up: PostgreSQL
    // fails on a NUL in a compared string, which would otherwise be a 500.
    const share = /^shr_[A-Za-z0-9_-]{16}$/.test(shareId) ? await this.transactions.reader.getRepository(ShareEntity).findOneBy({ id: shareId }) : null;
    if (!share) throw new NotFoundException(`No share ${shareId}`);
    const states = new Map(
      (await this.transactions.reader.getRepository(ShareRecipientEntity).findBy({ shareId })).map((r) => [r.waId, r.deliveryState]),
    );
    const errors = new Map(
      (await this.transactions.reader.getRepository(OutboxMessageEntity).find({ select: { waId: true, errorCode: true }, where: { shareId } })).map((m) => [m.waId, m.errorCode]),
    );
    const index = (await this.auditLog.indicesOf([share.auditEntry])).get(share.auditEntry) ?? null;
    return {
      ...share.document,
      audit: { entry: share.auditEntry, index },
      recipients: share.document.recipients.map((r) => {
        const delivery = states.get(r.waId) ?? null;
        const deliveryError = delivery === 'failed' ? errors.get(r.waId) : null;
        return { ...r, delivery, ...(deliveryError ? { deliveryError } : {}) };
      }),
    };
  }
}
