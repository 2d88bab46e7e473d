import { Command } from '@nestjs/cqrs';
import type { ShareDocument } from '../share-document.js';
import type { RequestShareDto } from './request-share.dto.js';

export interface ShareRequestResult {
  document: ShareDocument;
  /** True when the Idempotency-Key was seen before with the same body: the first result, again. */
  replayed: boolean;
}

export class RequestShareCommand extends Command<ShareRequestResult> {
  constructor(
    readonly apiKeyId: string,
    readonly idempotencyKey: string,
    /** The request body exactly as received (JSON), for the idempotency fingerprint. */
    readonly body: Record<string, unknown>,
    readonly request: RequestShareDto,
  ) {
    super();
  }
}
