import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AuditLogService } from '../audit/audit-log.service.js';
import { AuditSequencer } from '../audit/audit-sequencer.js';
import { SubjectKeyService } from '../audit/subject-keys.service.js';
import { ConsentLedger } from '../consent/consent-ledger.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';
import { PolicyRegistry } from '../policy/policy-registry.js';
import { retentionMs } from '../policy/domain/retention.js';

const DAY_MS = 86_400_000;

export type RetentionSweep = { status: 'swept'; cutoff: string; destroyed: Record<string, number> } | { status: 'skipped'; reason: string };

/**
 * Honours the policies' audit retention by key destruction, never by deleting entries: the keys
 * of people sluice has not processed for longer than the longest retention of the active
 * policies are destroyed, which makes everything the log holds about them unlinkable, unless a
 * consent of theirs stands (its sealed proof is needed while it is relied on). (Reports already
 * leave out the detail of crossings past their own policy's retention.) Runs at start and daily.
 */
@Injectable()
export class AuditRetentionService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('AuditRetention');
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private stopped = false;

  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(SubjectKeyService) private readonly subjectKeys: SubjectKeyService,
    @Inject(ConsentLedger) private readonly consents: ConsentLedger,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(AuditSequencer) private readonly sequencer: AuditSequencer,
    @Inject(PolicyRegistry) private readonly policies: PolicyRegistry,
  ) {}

  onApplicationBootstrap(): void {
    // Once at start and then daily: a server restarted more often than daily still sweeps.
    const sweepAndReschedule = (delayMs: number) => {
      this.timer = setTimeout(() => {
        this.sweeping = this.sweep()
          .then(
            () => undefined,
            (error: Error) => this.logger.error(`retention sweep failed: ${error.name}`),
          )
          .finally(() => {
            if (!this.stopped) sweepAndReschedule(DAY_MS);
          });
      }, delayMs);
      this.timer.unref();
    };
    sweepAndReschedule(0);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.sweeping;
  }

  async sweep(now = new Date()): Promise<RetentionSweep> {
    const retentions = this.policies.bundle.policies.map((p) => p.retention);
    if (retentions.some((r) => r === undefined)) return { status: 'skipped', reason: 'a policy sets no audit retention' };
    const longest = retentions.reduce((max, r) => Math.max(max, retentionMs(r!)), 0);
    const cutoff = new Date(now.getTime() - longest);
    const entry = await this.transactions.run(async (manager) => {
      // A consent granted now is relied on: its proof, sealed under the person's key, is kept.
      const held = await this.consents.subjectsHeld(manager);
      const { counts: destroyed, destroyed: isDestroyed } = await this.subjectKeys.destroyUnusedSince(
        manager,
        cutoff,
        held.filter((h) => h.granted).map((h) => h.subject),
      );
      if (Object.keys(destroyed).length === 0) return { destroyed, id: undefined };
      // What is left of a withdrawn consent names the person in the clear next to the entry that
      // holds their pseudonym: it goes with the key.
      for (const { subject } of held.filter((h) => !h.granted && isDestroyed(h.subject))) await this.consents.forget(manager, subject);
      const [queued] = await this.auditLog.append(manager, [{ kind: 'subject.erased', body: { reason: 'retention', cutoff: cutoff.toISOString(), keys: destroyed } }]);
      return { destroyed, id: queued!.id };
    });
    if (entry.id) await this.sequencer.awaitIndices([entry.id]);
    return { status: 'swept', cutoff: cutoff.toISOString(), destroyed: entry.destroyed };
  }
}
