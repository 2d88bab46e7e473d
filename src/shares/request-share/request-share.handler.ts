import { ConflictException, Inject, Logger } from '@nestjs/common';
import { CommandHandler, EventBus, type ICommandHandler } from '@nestjs/cqrs';
import { createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { AuditLogService } from '../../audit/audit-log.service.js';
import { AuditSequencer } from '../../audit/audit-sequencer.js';
import { canonicalJson } from '../../audit/domain/canonical-json.js';
import { SubjectKeyService } from '../../audit/subject-keys.service.js';
import { ConsentLedger, consentKey } from '../../consent/consent-ledger.js';
import type { SubjectRef } from '../../consent/subject.js';
import { MediaObjectEntity, OutboxMessageEntity } from '../../delivery/infrastructure/delivery.entities.js';
import { mediaMessage, templateMessage, textMessage, type WhatsAppMessageRequest } from '../../delivery/whatsapp-message.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../../platform/config/config.js';
import { KEY_MATERIAL, type KeyMaterial } from '../../platform/crypto/key-material.js';
import { TransactionRunner } from '../../platform/database/transaction-runner.js';
import { consentSubjectsFor, evaluateShare, type Outbound, type ShareDecision, type ShareInput } from '../../policy/domain/evaluator.js';
import { fetchMedia } from '../../policy/media-fetcher.js';
import { prepareMedia, type PreparedMedia } from '../../policy/media-preparation.js';
import { PolicyRegistry } from '../../policy/policy-registry.js';
import { ShareDecidedEvent } from '../events.js';
import { ShareEntity, ShareRecipientEntity } from '../infrastructure/share.entities.js';
import type { ShareDocument } from '../share-document.js';
import { RequestShareCommand, type ShareRequestResult } from './request-share.command.js';

const SOURCE = 'workplace.post';
const DESTINATION = 'whatsapp';

/**
 * Decides one share and records it: the decision, its audit entry and an outbox row per allowed
 * recipient are written in one transaction, so nothing can be sent that the log does not hold.
 */
@CommandHandler(RequestShareCommand)
export class RequestShareHandler implements ICommandHandler<RequestShareCommand> {
  private readonly logger = new Logger('RequestShare');
  private readonly fieldHashKey: Buffer;

  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(PolicyRegistry) private readonly policies: PolicyRegistry,
    @Inject(ConsentLedger) private readonly consents: ConsentLedger,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(AuditSequencer) private readonly sequencer: AuditSequencer,
    @Inject(SubjectKeyService) private readonly subjectKeys: SubjectKeyService,
    @Inject(EventBus) private readonly events: EventBus,
    @Inject(KEY_MATERIAL) keys: KeyMaterial,
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
  ) {
    this.fieldHashKey = Buffer.from(hkdfSync('sha256', keys.masterKey, Buffer.alloc(0), 'sluice field hash v1', 32));
  }

  async execute(command: RequestShareCommand): Promise<ShareRequestResult> {
    const requestHash = createHash('sha256').update(canonicalJson(command.body)).digest('hex');
    const earlier = await this.findEarlier(this.transactions.dataSource.manager, command, requestHash);
    if (earlier) return earlier;

    const { decision, media } = await this.decide(command);
    const result = await this.transactions.run(async (manager) => {
      // Under this lock a concurrent request with the same key has either committed or not begun.
      await this.transactions.exclusive(manager, `sluice:idempotency:${command.apiKeyId}:${command.idempotencyKey}`);
      return (await this.findEarlier(manager, command, requestHash)) ?? this.record(manager, command, requestHash, decision, media);
    });
    if (!result.replayed) {
      // The answer names the decision's place in the log: wait for the sequencer (it batches
      // concurrent decisions into one signed checkpoint). Delivery waits for it too (outbox claim).
      const index = (await this.sequencer.awaitIndices([result.document.audit.entry])).get(result.document.audit.entry)!;
      result.document = { ...result.document, audit: { entry: result.document.audit.entry, index } };
      this.events.publish(new ShareDecidedEvent(result.document.id, result.document.recipients.filter((r) => r.decision === 'allowed').length));
    }
    return result;
  }

  private async findEarlier(manager: EntityManager, command: RequestShareCommand, requestHash: string): Promise<ShareRequestResult | undefined> {
    const share = await manager.getRepository(ShareEntity).findOneBy({ apiKeyId: command.apiKeyId, idempotencyKey: command.idempotencyKey });
    if (!share) return undefined;
    if (share.requestHash !== requestHash) {
      throw new ConflictException('This Idempotency-Key was already used with a different request body');
    }
    const index = (await this.auditLog.indicesOf([share.auditEntry], manager)).get(share.auditEntry) ?? null;
    return { document: { ...share.document, audit: { entry: share.auditEntry, index } }, replayed: true };
  }

  /** Evaluates the share; any error on the way denies it (fail closed), and that denial is recorded. */
  private async decide(command: RequestShareCommand): Promise<{ decision: ShareDecision; media: PreparedMedia['minimised'] }> {
    const { request } = command;
    const bundle = this.policies.bundle;
    const input: ShareInput = {
      purpose: request.purpose,
      source: SOURCE,
      destination: DESTINATION,
      post: command.body.post as Record<string, unknown>,
      recipients: request.recipients.map((r) => ({ waId: r.waId })),
    };
    const policy = bundle.select(request.purpose, SOURCE, DESTINATION);
    try {
      const needed = policy ? consentSubjectsFor(policy, input) : [];
      const known = new Map<string, 'granted' | 'withdrawn' | 'none'>();
      for (const purpose of new Set(needed.map((n) => n.purpose))) {
        const subjects = needed.filter((n) => n.purpose === purpose).map((n) => n.subject as SubjectRef);
        for (const [key, status] of await this.consents.lookup(subjects, purpose)) known.set(`${purpose}|${key}`, status);
      }
      const prepared = policy
        ? await prepareMedia(policy, input.post, { fetchRemote: (url, maxBytes) => fetchMedia(url, maxBytes, this.config.mediaFetch) })
        : { outcomes: [], minimised: new Map() };
      const decision = evaluateShare(policy, bundle.hash, { ...input, media: prepared.outcomes }, {
        consents: (subject, purpose) => known.get(`${purpose}|${consentKey(subject as SubjectRef)}`) ?? 'none',
        keyedHash: (value) => `h_${createHmac('sha256', this.fieldHashKey).update(value).digest('base64url').slice(0, 22)}`,
      });
      return { decision, media: prepared.minimised };
    } catch (error) {
      this.logger.error(`decision failed, share denied (fail closed): ${(error as Error).name}`);
      return { decision: failClosed(policy ? { name: policy.name, bundle: bundle.hash } : null, input), media: new Map() };
    }
  }

  private async record(
    manager: EntityManager,
    command: RequestShareCommand,
    requestHash: string,
    decision: ShareDecision,
    media: PreparedMedia['minimised'],
  ): Promise<ShareRequestResult> {
    const id = `shr_${randomBytes(12).toString('base64url')}`;
    const now = new Date().toISOString();
    const author: SubjectRef = { type: 'workplace', id: String((command.body.post as { from?: { id?: unknown } }).from?.id ?? '') };

    const pseudonymOf = (subject: SubjectRef) => this.subjectKeys.pseudonym(manager, subject);
    const [entry] = await this.auditLog.append(manager, [
      {
        kind: 'share.decided',
        body: {
          share: id,
          purpose: command.request.purpose,
          policy: decision.policy ?? { name: null, bundle: this.policies.bundle.hash },
          lawfulBasis: decision.lawfulBasis ?? null,
          status: decision.status,
          reasons: decision.reasons,
          requestedBy: command.apiKeyId,
          sharedBy: await pseudonymOf({ type: 'workplace', id: command.request.sharedBy.workplaceUserId }),
          post: await this.subjectKeys.digest(manager, author, String((command.body.post as { id?: unknown }).id)),
          recipients: await inOrder(decision.recipients, async (r) => ({ subject: await pseudonymOf({ type: 'whatsapp', id: r.waId }), decision: r.decision, reasons: r.reasons })),
          subjects: await inOrder(
            decision.subjects.filter((s) => s.role !== 'recipient'),
            async (s) => ({
              role: s.role,
              subject: await pseudonymOf({ type: s.type as SubjectRef['type'], id: s.id }),
              subjectType: s.type,
              consent: s.consent,
              categories: s.categories,
            }),
          ),
          crossing: {
            fields: await inOrder(decision.crossing.fields, async (f) => ({
              path: auditablePath(f.path),
              category: f.category,
              transform: f.transform,
              ...(f.subject === 'author' ? { subject: await pseudonymOf(author) } : {}),
            })),
            dropped: decision.crossing.dropped.map((d) => ({ path: auditablePath(d.path), reason: d.reason })),
            redactions: decision.crossing.redactions,
          },
          content: decision.outbound ? await this.contentRecord(manager, author, decision.outbound, id) : null,
          ...(decision.outsideWindow
            ? { outsideWindow: { template: decision.outsideWindow.name, digest: await this.subjectKeys.digest(manager, author, canonicalJson(decision.outsideWindow.parameters)) } }
            : {}),
        },
      },
    ]);

    const document: ShareDocument = {
      id,
      status: decision.status,
      policy: decision.policy ?? { name: null, bundle: this.policies.bundle.hash },
      reasons: decision.reasons,
      recipients: decision.recipients.map((r) => ({ waId: r.waId, decision: r.decision, reasons: r.reasons })),
      crossing: decision.crossing,
      audit: { entry: entry!.id, index: null },
      createdAt: now,
    };
    await manager.insert(ShareEntity, {
      id,
      apiKeyId: command.apiKeyId,
      idempotencyKey: command.idempotencyKey,
      requestHash,
      status: decision.status,
      policyName: decision.policy?.name ?? null,
      bundleHash: document.policy.bundle,
      document,
      auditEntry: entry!.id,
      createdAt: now,
    });
    await manager.insert(
      ShareRecipientEntity,
      decision.recipients.map((r) => ({
        shareId: id,
        waId: r.waId,
        decision: r.decision,
        reasons: r.reasons,
        deliveryState: r.decision === 'allowed' ? ('queued' as const) : null,
        deliveryUpdatedAt: r.decision === 'allowed' ? now : null,
      })),
    );
    const outbound = decision.outbound;
    const allowed = decision.recipients.filter((r) => r.decision === 'allowed');
    if (outbound && allowed.length > 0) {
      const mediaId = outbound.type === 'image' || outbound.type === 'video' ? await this.storeMedia(manager, id, outbound, media, now) : undefined;
      await manager.insert(
        OutboxMessageEntity,
        allowed.map((r) => ({
          id: `out_${randomBytes(12).toString('base64url')}`,
          shareId: id,
          waId: r.waId,
          purpose: command.request.purpose,
          payload: whatsAppRequest(r.waId, outbound, mediaId),
          fallbackPayload: decision.outsideWindow ? whatsAppRequest(r.waId, decision.outsideWindow, undefined) : null,
          decisionEntry: entry!.id,
          state: 'pending' as const,
          attempts: 0,
          claimedBy: null,
          claimExpiresAt: null,
          createdAt: now,
          updatedAt: now,
        })),
      );
    }
    return { document, replayed: false };
  }

  /**
   * What crossed: digests keyed by the author's key (provable), and the text itself sealed under
   * it, so the author's subject access report can show it; both unlinkable after erasure.
   */
  private async contentRecord(manager: EntityManager, author: SubjectRef, outbound: Outbound, shareId: string): Promise<Record<string, unknown>> {
    const digest = (value: string) => this.subjectKeys.digest(manager, author, value);
    const text = outbound.type === 'text' ? outbound.body : outbound.type === 'template' ? outbound.parameters.join('\n') : outbound.caption;
    const sealed = await this.subjectKeys.seal(manager, author, text, `share ${shareId}`);
    switch (outbound.type) {
      case 'text':
        return { type: 'text', digest: await digest(outbound.body), length: outbound.body.length, sealed };
      case 'template':
        return { type: 'template', template: outbound.name, digest: await digest(canonicalJson(outbound.parameters)), parameters: outbound.parameters.length, sealed };
      default:
        return {
          type: outbound.type,
          digest: await digest(outbound.caption),
          length: outbound.caption.length,
          sealed,
          media: { digest: await digest(outbound.media.sha256), mimeType: outbound.media.mimeType },
        };
    }
  }

  private async storeMedia(manager: EntityManager, shareId: string, outbound: Extract<Outbound, { media: unknown }>, media: PreparedMedia['minimised'], now: string): Promise<string> {
    const minimised = media.get(outbound.media.path);
    if (!minimised || minimised.sha256 !== outbound.media.sha256) throw new Error('the decided media is missing');
    const id = `med_${createHash('sha256').update(shareId).update(minimised.sha256).digest('hex').slice(0, 32)}`;
    await manager.insert(MediaObjectEntity, { id, shareId, sha256: minimised.sha256, mimeType: minimised.mimeType, size: minimised.bytes.length, bytes: minimised.bytes, createdAt: now });
    return id;
  }
}

function whatsAppRequest(to: string, outbound: Outbound, mediaId: string | undefined): WhatsAppMessageRequest {
  switch (outbound.type) {
    case 'text':
      return textMessage(to, outbound.body);
    case 'template':
      return templateMessage(to, outbound.name, outbound.language, outbound.parameters);
    default:
      return mediaMessage(to, outbound.type, mediaId!, outbound.caption);
  }
}

function failClosed(policy: { name: string; bundle: string } | null, input: ShareInput): ShareDecision {
  return {
    status: 'denied',
    policy,
    reasons: ['internal.fail_closed'],
    recipients: input.recipients.map((r) => ({ waId: r.waId, decision: 'denied', reasons: ['internal.fail_closed'] })),
    crossing: { fields: [], dropped: [], redactions: [] },
    subjects: [],
    outbound: null,
    outsideWindow: null,
  };
}

/** One after another: the lookups share the transaction's connection, which runs one query at a time. */
async function inOrder<T, R>(items: T[], map: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (const item of items) results.push(await map(item));
  return results;
}

/** Field names come from the caller; one that is not a plain identifier could carry anything. */
function auditablePath(path: string): string {
  return path
    .split('.')
    .map((part) => (/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(part) || /^\d{1,6}$/.test(part) ? part : '(unnamed)'))
    .join('.');
}
