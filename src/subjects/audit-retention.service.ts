import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AuditLogService } from '../audit/audit-log.service.js';
import { AuditSequencer } from '../audit/audit-sequencer.js';
import { SubjectKeyService } from '../audit/subject-keys.service.js';
import { ConsentLedger } from '../consent/consent-ledger.js';
import { inGroupsOf, Sql } from '../platform/database/sql.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';
import { PolicyRegistry } from '../policy/policy-registry.js';
import { retentionMs } from '../policy/domain/retention.js';

const DAY_MS = 86_400_000;

export type RetentionSweep =
  | { status: 'swept'; cutoff: string; destroyed: Record<string, number>; purged: { shares: number; contacts: number } }
  | { status: 'skipped'; reason: string };

/** Old shares removed per transaction. */
const PURGE_BATCH = 500;

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
    const purged = await this.purgeOperationalRecords(cutoff);
    if (purged.shares + purged.contacts > 0) this.logger.log(`retention: removed ${purged.shares} share(s) and ${purged.contacts} contact window(s) older than ${cutoff.toISOString()}`);
    if (entry.id) await this.sequencer.awaitIndices([entry.id]);
    return { status: 'swept', cutoff: cutoff.toISOString(), destroyed: entry.destroyed, purged };
  }

  /**
   * The operational copies older than the retention go: shares decided before `cutoff` none of
   * whose messages is still waiting (their documents, recipients, messages, the sandbox's copies
   * and any media), the service windows of contacts last heard from before it, and WhatsApp user
   * ids last seen with a number before it. They hold numbers and texts in the clear, which would
   * tie the log's entries about people whose keys are gone back to them; the log itself keeps
   * what happened. A batch per transaction, so shares being decided meanwhile do not wait long.
   */
  private async purgeOperationalRecords(cutoff: Date): Promise<{ shares: number; contacts: number }> {
    const before = cutoff.toISOString();
    let shares = 0;
    for (;;) {
      const batch = await this.transactions.run(async (manager) => {
        const sql = Sql.of(manager);
        const old = await sql.rows<{ id: string }>(
          manager,
          `SELECT id FROM shares WHERE created_at < ${sql.params(1)}
             AND NOT EXISTS (SELECT 1 FROM outbox_messages o WHERE o.share_id = shares.id AND o.state IN ('pending', 'claimed'))
             ORDER BY created_at LIMIT ${PURGE_BATCH}`,
          [before],
        );
        const ids = old.map((row) => row.id);
        if (ids.length === 0) return { read: 0, removed: 0 };
        // In the worker's order: the outbox, the recipients, then the media. A message queued
        // again since the read above (a late failure report) stays, and so does its share.
        const messages = await sql.rows<{ id: string }>(
          manager,
          `DELETE FROM outbox_messages WHERE share_id IN (${sql.params(ids.length)}) AND state NOT IN ('pending', 'claimed') RETURNING id`,
          ids,
        );
        const kept = new Set((await sql.rows<{ share_id: string }>(manager, `SELECT DISTINCT share_id FROM outbox_messages WHERE share_id IN (${sql.params(ids.length)})`, ids)).map((row) => row.share_id));
        const gone = ids.filter((id) => !kept.has(id));
        if (gone.length > 0) {
          const theirs = sql.params(gone.length);
          await sql.execute(manager, `DELETE FROM share_recipients WHERE share_id IN (${theirs})`, gone);
          await sql.execute(manager, `DELETE FROM media_objects WHERE share_id IN (${theirs})`, gone);
          await sql.execute(manager, `DELETE FROM shares WHERE id IN (${theirs})`, gone);
        }
        for (const group of inGroupsOf(messages.map((row) => row.id))) {
          await sql.execute(manager, `DELETE FROM sandbox_media WHERE outbox_id IN (${sql.params(group.length)})`, group);
          await sql.execute(manager, `DELETE FROM sandbox_messages WHERE outbox_id IN (${sql.params(group.length)})`, group);
        }
        return { read: ids.length, removed: gone.length };
      });
      shares += batch.removed;
      if (batch.read < PURGE_BATCH || this.stopped) break;
    }
    const contacts = await this.transactions.run(async (manager) => {
      const sql = Sql.of(manager);
      // WhatsApp's user ids last seen (with a number, or replaced) before the cutoff go with them.
      await sql.execute(manager, `DELETE FROM whatsapp_user_ids WHERE learned_at < ${sql.params(1)}`, [before]);
      return (await sql.rows(manager, `DELETE FROM whatsapp_contacts WHERE last_inbound_at < ${sql.params(1)} RETURNING wa_id`, [before])).length;
    });
    return { shares, contacts };
  }
}
