import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { randomBytes } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { type AuditDraft, AuditLogService } from '../../audit/audit-log.service.js';
import { AuditSequencer } from '../../audit/audit-sequencer.js';
import { subjectPseudonym } from '../../audit/domain/pseudonym.js';
import { SubjectKeyService } from '../../audit/subject-keys.service.js';
import { ConsentLedger } from '../../consent/consent-ledger.js';
import type { SubjectRef } from '../../consent/subject.js';
import { releaseFinishedMedia } from '../../delivery/media-retention.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../../platform/config/config.js';
import { inGroupsOf, Sql } from '../../platform/database/sql.js';
import { TransactionRunner } from '../../platform/database/transaction-runner.js';
import { Traced } from '../../platform/observability/traced.js';

export interface SubjectErased {
  erased: boolean;
  /** The subject.erased entry; null when there was nothing to erase. */
  audit: { entry: string; index: number } | null;
}

export class EraseSubjectCommand extends Command<SubjectErased> {
  constructor(readonly subject: SubjectRef) {
    super();
  }
}

/**
 * Erasure (GDPR Art. 17) by crypto-shredding. The audit log is never touched: the person's key is
 * destroyed, so every pseudonym, digest and sealed value made with it can no longer be tied to
 * them, and the log still verifies. The operational records that hold their identifier in the
 * clear are cleared in the same transaction: the consent projection, and for a WhatsApp contact
 * the share recipients, the decision documents, the queued messages (cancelled), the service
 * window record and the sandbox's copies. A `subject.erased` entry, without personal data, records that it happened.
 */
@CommandHandler(EraseSubjectCommand)
export class EraseSubjectHandler implements ICommandHandler<EraseSubjectCommand> {
  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(SubjectKeyService) private readonly subjectKeys: SubjectKeyService,
    @Inject(ConsentLedger) private readonly consents: ConsentLedger,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(AuditSequencer) private readonly sequencer: AuditSequencer,
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
  ) {}

  @Traced('sluice.subject.erase', { attributes: ({ subject }: EraseSubjectCommand) => ({ 'sluice.subject.type': subject.type }), result: (r: SubjectErased) => ({ 'sluice.subject.erased': r.erased }) })
  async execute({ subject }: EraseSubjectCommand): Promise<SubjectErased> {
    const entry = await this.transactions.run(async (manager) => {
      await this.transactions.exclusive(manager, `sluice:subject:${subject.type}:${subject.id}`);
      // Before anything is read: what a share that holds them is writing is then committed and cleared below.
      await this.subjectKeys.excludeHolders(manager, subject);
      const key = await this.subjectKeys.existingKey(manager, subject);
      // Without their key the entries' pseudonym is made under one kept nowhere: as unlinkable as theirs is about to be.
      const pseudonym = subjectPseudonym(key ?? randomBytes(32), subject);
      // Also when a retention sweep destroyed their key already: the clear copies are still here.
      const forgotten = await this.consents.forget(manager, subject);
      const contact = subject.type === 'whatsapp' ? await this.clearContact(manager, subject.id, pseudonym) : { found: false, shares: 0, messages: 0, cancellations: [] };
      const { found, cancellations, ...cleared } = contact;
      if (!key && !forgotten && !found) return undefined;
      await this.subjectKeys.destroy(manager, subject);
      const queued = await this.auditLog.append(manager, [...cancellations, { kind: 'subject.erased', body: { subject: pseudonym, subjectType: subject.type, cleared } }]);
      return queued.at(-1)!.id;
    });
    if (!entry) return { erased: false, audit: null };
    const index = (await this.sequencer.awaitIndices([entry])).get(entry)!;
    return { erased: true, audit: { entry, index } };
  }

  /**
   * Replaces a WhatsApp number wherever sluice's operational tables hold it in the clear; `found`:
   * whether any held it. The messages to them not yet sent are cancelled, each with its final
   * entry (`cancellations`, naming the recipient by `pseudonym`), and so is the recipient's state.
   */
  private async clearContact(manager: EntityManager, waId: string, pseudonym: string): Promise<{ found: boolean; shares: number; messages: number; cancellations: AuditDraft[] }> {
    const postgres = this.transactions.dialect === 'postgres';
    const p = (n: number) => (postgres ? `$${n}` : '?');
    // Unique per erasure, so two erased recipients of one share stay two rows.
    const placeholder = `erased-${randomBytes(6).toString('hex')}`;
    const sql = Sql.of(manager);
    const now = new Date().toISOString();
    // The outbox first, then the recipients: the order in which the delivery worker writes them.
    // A message not yet sent never will be: cancelled, in one statement with reading what it was.
    const unsent = await sql.rows<{ id: string; share_id: string; decision_entry: string; attempts: number | string; attempt_started_at: string | null }>(
      manager,
      `UPDATE outbox_messages SET state = 'cancelled', claimed_by = NULL, claim_expires_at = NULL, updated_at = ${p(1)}
         WHERE wa_id = ${p(2)} AND state IN ('pending', 'claimed') RETURNING id, share_id, decision_entry, attempts, attempt_started_at`,
      [now, waId],
    );
    const cancellations = unsent.map(
      (m): AuditDraft => ({
        kind: 'message.cancelled',
        body: {
          share: m.share_id,
          outbox: m.id,
          decision: m.decision_entry,
          recipient: pseudonym,
          reason: 'subject.erased',
          // An attempt under way may yet reach WhatsApp: its worker no longer holds the message to say.
          ...(m.attempt_started_at !== null ? { attempt: Number(m.attempts), delivered: 'unknown' } : {}),
        },
      }),
    );
    const theirMessages = await sql.rows<{ share_id: string }>(manager, `SELECT share_id FROM outbox_messages WHERE wa_id = ${p(1)}`, [waId]);
    // The request bodies that named the number go, and WhatsApp's message id, which holds it in
    // base64 (its status webhooks then match nothing).
    await manager.query(
      `UPDATE outbox_messages SET wa_id = ${p(1)}, payload = ${p(2)}, fallback_payload = NULL, message_id = NULL, retried_message_ids = NULL, updated_at = ${p(3)} WHERE wa_id = ${p(4)}`,
      [placeholder, JSON.stringify({ erased: true }), now, waId],
    );
    const cancelledShares = [...new Set(unsent.map((m) => m.share_id))];
    const [{ n: shares } = { n: 0 }] = await sql.rows<{ n: number | string }>(manager, `SELECT COUNT(DISTINCT share_id) AS n FROM share_recipients WHERE wa_id = ${p(1)}`, [waId]);
    // One statement however many shares name them: shares that name anyone of this subject's lock
    // bucket wait for the erasure meanwhile (SubjectKeyService.excludeHolders). Documents are
    // JSON.stringify's output and a WhatsApp id is digits only, so the member's text is exact.
    await manager.query(
      `UPDATE shares SET document = REPLACE(document, ${p(1)}, ${p(2)}) WHERE id IN (SELECT share_id FROM share_recipients WHERE wa_id = ${p(3)})`,
      [`"waId":${JSON.stringify(waId)}`, `"waId":${JSON.stringify(placeholder)}`, waId],
    );
    for (const group of inGroupsOf(cancelledShares)) {
      await manager.query(
        `UPDATE share_recipients SET delivery_state = 'cancelled', delivery_updated_at = ${p(1)} WHERE wa_id = ${p(2)} AND delivery_state = 'queued' AND share_id IN (${group.map((_, i) => p(i + 3)).join(', ')})`,
        [now, waId, ...group],
      );
    }
    await manager.query(`UPDATE share_recipients SET wa_id = ${p(1)} WHERE wa_id = ${p(2)}`, [placeholder, waId]);
    // The minimised media of a share none of whose messages can still be sent, as when they are
    // sent, and in the worker's order (after the recipients). This recipient's copies have just
    // lost WhatsApp's id: none of them is sent again.
    await releaseFinishedMedia(manager, { holdAfterSendMs: this.config.mediaHoldAfterSendMs, maxAttempts: this.config.deliveryMaxAttempts }, new Date(now), theirMessages.map((m) => m.share_id));
    const [held] = (await manager.query(
      `SELECT (SELECT COUNT(*) FROM whatsapp_contacts WHERE wa_id = ${p(1)}) + (SELECT COUNT(*) FROM sandbox_messages WHERE wa_id = ${p(2)}) AS n`,
      [waId, waId],
    )) as { n: number | string }[];
    // The contact's service window (when they last wrote) is about them too.
    await manager.query(`DELETE FROM whatsapp_contacts WHERE wa_id = ${p(1)}`, [waId]);
    await manager.query(`DELETE FROM sandbox_media WHERE outbox_id IN (SELECT outbox_id FROM sandbox_messages WHERE wa_id = ${p(1)})`, [waId]);
    await manager.query(`DELETE FROM sandbox_messages WHERE wa_id = ${p(1)}`, [waId]);
    const messages = theirMessages.length;
    return { found: Number(shares) + messages + Number(held!.n) > 0, shares: Number(shares), messages, cancellations };
  }
}
