import { ConflictException, Inject, Logger, ServiceUnavailableException } from '@nestjs/common';
import { CommandHandler, EventBus, type ICommandHandler } from '@nestjs/cqrs';
import { createHash, createHmac, hkdfSync } from 'node:crypto';
import { AuditSequencer } from '../../audit/audit-sequencer.js';
import { canonicalJson } from '../../audit/domain/canonical-json.js';
import { SubjectKeyDestroyed } from '../../audit/subject-keys.service.js';
import { ConsentLedger, consentKey } from '../../consent/consent-ledger.js';
import type { SubjectRef } from '../../consent/subject.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../../platform/config/config.js';
import { KEY_MATERIAL, type KeyMaterial } from '../../platform/crypto/key-material.js';
import { countShareDecision } from '../../platform/observability/metrics.js';
import { Traced } from '../../platform/observability/traced.js';
import { consentSubjectsFor, evaluateShare, type ShareDecision, type ShareInput } from '../../policy/domain/evaluator.js';
import type { PolicyBundle } from '../../policy/domain/loader.js';
import type { CompiledPolicy } from '../../policy/domain/policy.js';
import { fetchMedia } from '../../policy/media-fetcher.js';
import { prepareMedia, type PreparedMedia } from '../../policy/media-preparation.js';
import { PolicyRegistry } from '../../policy/policy-registry.js';
import { ShareDecidedEvent } from '../events.js';
import { RequestShareCommand, type ShareRequestResult } from './request-share.command.js';
import { type RecordedShare, type RequestDigest, ShareRecorder } from './share-recorder.js';

const SOURCE = 'workplace.post';
const DESTINATION = 'whatsapp';
/** Decisions made for one request before giving up, should its people keep being erased meanwhile. */
const MAX_DECISIONS = 4;

/**
 * Decides one share and records it (ShareRecorder): the decision, its audit entry and an outbox
 * row per allowed recipient are written in one transaction, so nothing can be sent that the log
 * does not hold; the answer comes once that transaction has committed and the entry has its index.
 */
@CommandHandler(RequestShareCommand)
export class RequestShareHandler implements ICommandHandler<RequestShareCommand> {
  private readonly logger = new Logger('RequestShare');
  private readonly fieldHashKey: Buffer;
  private readonly requestHashKey: Buffer;

  constructor(
    @Inject(PolicyRegistry) private readonly policies: PolicyRegistry,
    @Inject(ConsentLedger) private readonly consents: ConsentLedger,
    @Inject(AuditSequencer) private readonly sequencer: AuditSequencer,
    @Inject(ShareRecorder) private readonly recorder: ShareRecorder,
    @Inject(EventBus) private readonly events: EventBus,
    @Inject(KEY_MATERIAL) keys: KeyMaterial,
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
  ) {
    this.fieldHashKey = Buffer.from(hkdfSync('sha256', keys.masterKey, Buffer.alloc(0), 'sluice field hash v1', 32));
    this.requestHashKey = Buffer.from(hkdfSync('sha256', keys.masterKey, Buffer.alloc(0), 'sluice request hash v1', 32));
  }

  @Traced('sluice.share.request', { result: (r: ShareRequestResult) => ({ 'sluice.share.id': r.document.id, 'sluice.share.replayed': r.replayed }) })
  async execute(command: RequestShareCommand): Promise<ShareRequestResult> {
    const canonical = canonicalJson(command.body);
    const requestHash: RequestDigest = {
      keyed: createHmac('sha256', this.requestHashKey).update(canonical).digest('hex'),
      unkeyed: createHash('sha256').update(canonical).digest('hex'),
    };
    const share = this.shareInput(command);
    // Looked up while the replay check runs: one wait for both reads. A failure is handled where
    // `decide` awaits it (the share is denied); a replay leaves it unused.
    const consents = this.readConsents(share);
    // A replay skips deciding (and fetching media) again; a concurrent one is caught when recorded.
    const earlier = await this.recorder.earlier(command, requestHash);
    if (earlier) return this.answer(earlier);

    const { decision, recorded } = await this.decideAndRecord(command, requestHash, share, consents);
    if (recorded.outcome !== 'recorded') return this.answer(recorded);
    // Counted once it is in the log: a decision whose transaction failed (answered 500) or that
    // a concurrent request with the same key had already made never took effect.
    countShareDecision(decision);
    // The answer names the decision's place in the log. It is normally sequenced in the commit
    // that recorded it; if another replica was sequencing, wait for that. Delivery waits for it too (outbox claim).
    const entry = recorded.document.audit.entry;
    const index = recorded.index ?? (await this.sequencer.awaitIndices([entry])).get(entry)!;
    const document = { ...recorded.document, audit: { entry, index } };
    this.events.publish(new ShareDecidedEvent(document.id, document.recipients.filter((r) => r.decision === 'allowed').length));
    return { document, replayed: false };
  }

  /**
   * Decides the share and records the decision. If someone it names was erased after the decision
   * read their consent (or their key was destroyed by retention), the decision may rest on what
   * the erasure removed, and recording it would put their identifier back where the erasure
   * cleared it: it is decided again, from what holds now.
   */
  private async decideAndRecord(
    command: RequestShareCommand,
    requestHash: RequestDigest,
    share: ShareToDecide,
    consents: ConsentsRead,
  ): Promise<{ decision: ShareDecision; recorded: Exclude<RecordedShare, { outcome: 'subject-erased' }> }> {
    let destroyedKeysSeen: ReadonlyMap<string, string> | undefined;
    for (let attempt = 1; ; attempt++) {
      const { decision, media } = await this.decide(share, consents.known);
      const recorded = await this.recorder.record({ command, requestHash, decision, listedPurposes: share.bundle.purposes, media, consentsAsOf: consents.asOf, destroyedKeysSeen }).catch((error: unknown): RecordedShare => {
        // A key this share's transaction read was destroyed before it could use it.
        if (error instanceof SubjectKeyDestroyed) return { outcome: 'subject-erased', destroyed: destroyedKeysSeen ?? new Map() };
        throw error;
      });
      if (recorded.outcome !== 'subject-erased') return { decision, recorded };
      if (attempt === MAX_DECISIONS) throw new ServiceUnavailableException('People this share names were being erased while it was decided; send it again');
      this.logger.log('a key of someone a share names was destroyed (an erasure, or retention) since it was decided: deciding it again');
      destroyedKeysSeen = recorded.destroyed;
      share = this.shareInput(command);
      consents = this.readConsents(share);
    }
  }

  /**
   * The answer for a key an earlier share holds: its document again, with its log index as the
   * first answer gave it (waited for if its entry is still queued), or 409 for another body.
   */
  private async answer(earlier: Extract<RecordedShare, { outcome: 'replayed' | 'conflict' }>): Promise<ShareRequestResult> {
    if (earlier.outcome === 'conflict') throw new ConflictException('This Idempotency-Key was already used with a different request body');
    const { audit } = earlier.document;
    const index = audit.index ?? (await this.sequencer.awaitIndices([audit.entry])).get(audit.entry)!;
    return { document: { ...earlier.document, audit: { entry: audit.entry, index } }, replayed: true };
  }

  /** Evaluates the share; any error on the way denies it (fail closed), and that denial is recorded. */
  @Traced('sluice.policy.evaluate', { result: ({ decision }: { decision: ShareDecision }) => ({ 'sluice.decision.status': decision.status, 'sluice.policy.name': decision.policy?.name ?? 'none' }) })
  private async decide({ bundle, policy, input }: ShareToDecide, consents: Promise<ConsentsKnown>): Promise<{ decision: ShareDecision; media: PreparedMedia['minimised'] }> {
    try {
      const known = await consents;
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
      return { decision: failClosed(bundle.hash, policy ? { name: policy.name, bundle: bundle.hash } : null, input), media: new Map() };
    }
  }

  private shareInput(command: RequestShareCommand): ShareToDecide {
    const { request } = command;
    const bundle = this.policies.bundle;
    const input: ShareInput = {
      purpose: request.purpose,
      source: SOURCE,
      destination: DESTINATION,
      post: command.body.post as Record<string, unknown>,
      recipients: request.recipients.map((r) => ({ waId: r.waId })),
    };
    return { bundle, policy: bundle.select(request.purpose, SOURCE, DESTINATION), input };
  }

  /**
   * Starts reading the consent of everyone the policy asks about. `asOf` is taken before the read:
   * a key made after it (an erased person's new one) tells the recorder the decision may predate
   * an erasure.
   */
  private readConsents(share: ShareToDecide): ConsentsRead {
    const asOf = new Date().toISOString();
    const known = this.consentsOf(share);
    // A failure is handled where `decide` awaits it (the share is denied); a replay leaves it unused.
    known.catch(() => undefined);
    return { asOf, known };
  }

  /** The consent of everyone the policy asks about, by `purpose|subject`. */
  private async consentsOf({ policy, input }: ShareToDecide): Promise<ConsentsKnown> {
    const needed = policy ? consentSubjectsFor(policy, input) : [];
    const known: ConsentsKnown = new Map();
    for (const purpose of new Set(needed.map((n) => n.purpose))) {
      const subjects = needed.filter((n) => n.purpose === purpose).map((n) => n.subject as SubjectRef);
      for (const [key, status] of await this.consents.lookup(subjects, purpose)) known.set(`${purpose}|${key}`, status);
    }
    return known;
  }
}

type ConsentsKnown = Map<string, 'granted' | 'withdrawn' | 'none'>;

/** Consents being read for a decision, and when the read began. */
interface ConsentsRead {
  asOf: string;
  known: Promise<ConsentsKnown>;
}

/** A share's input to the policy, and the bundle and policy that decide it. */
interface ShareToDecide {
  bundle: PolicyBundle;
  policy: CompiledPolicy | undefined;
  input: ShareInput;
}

function failClosed(bundle: string, policy: { name: string; bundle: string } | null, input: ShareInput): ShareDecision {
  return {
    status: 'denied',
    policy,
    bundle,
    reasons: ['internal.fail_closed'],
    recipients: input.recipients.map((r) => ({ waId: r.waId, decision: 'denied', reasons: ['internal.fail_closed'] })),
    recipientConsent: null,
    crossing: { fields: [], dropped: [], redactions: [] },
    subjects: [],
    outbound: null,
    outsideWindow: null,
  };
}
