import { Inject, NotFoundException } from '@nestjs/common';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { DataSource } from 'typeorm';
import { ShareEntity, ShareRecipientEntity } from '../infrastructure/share.entities.js';
import type { ShareDocument } from '../share-document.js';

export class GetShareQuery extends Query<ShareDocument> {
  constructor(readonly shareId: string) {
    super();
  }
}

@QueryHandler(GetShareQuery)
export class GetShareHandler implements IQueryHandler<GetShareQuery> {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /** The decision document plus each recipient's delivery state as it is now. */
  async execute({ shareId }: GetShareQuery): Promise<ShareDocument> {
    const share = await this.dataSource.getRepository(ShareEntity).findOneBy({ id: shareId });
    if (!share) throw new NotFoundException(`No share ${shareId}`);
    const states = new Map(
      (await this.dataSource.getRepository(ShareRecipientEntity).findBy({ shareId })).map((r) => [r.waId, r.deliveryState]),
    );
    return {
      ...share.document,
      recipients: share.document.recipients.map((r) => ({ ...r, delivery: states.get(r.waId) ?? null })),
    };
  }
}
