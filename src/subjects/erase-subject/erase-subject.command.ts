import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { randomBytes } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { type AuditDraft, AuditLogService } from '../../audit/audit-log.service.js';
import { AuditSequencer } from '../../audit/audit-sequencer.js';
import { subjectPseudonym } from '../../audit/domain/pseudonym.js';
import { SubjectKeyService } from '../../audit/subject-keys.service.js';
import { ConsentLedger } from '../../consent/consent-ledger.js';
import { subjectForms, type SubjectRef } from '../../consent/subject.js';
import { releaseFinishedMedia } from '../../delivery/media-retention.js';
import { ERASED_REQUEST_TEXT } from '../../delivery/whatsapp-message.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../../platform/config/config.js';
import { inGroupsOf, Sql } from '../../platform/database/sql.js';
import { TransactionRunner } from '../../platform/database/transaction-runner.js';
import { Traced } from '../../platform/observability/traced.js';

/** Shares whose rows one statement gives their own placeholder (three parameters each). */
const PLACEHOLDERS_PER_STATEMENT = 200;

export interface SubjectErased {
  erased: boolean;
  /** The subject.erased entry; null when there was nothing to erase. */
  audit: { entry: string; index: number } | null;
}

/** The shares whose content named a person, as read from the log outside the erasure's transaction. */
interface SharesRead {
  pseudonym: string;
  /** The log's last index before the read: entries after it are read in the transaction. */
  through: number;
  shares: Set<string>;
}

/** A message an erasure cancelled: its final entry, naming its recipient by `recipient` (a pseudonym). */
function cancelledByErasure(
  m: { id: string; share_id: string; decision_entry: string; attempts: number | string; attempt_started_at: string | null },
  recipient: string,
): AuditDraft {
  return {
    kind: 'message.cancelled',
    body: {
      share: m.share_id,
      outbox: m.id,
      decision: m.decision_entry,
      recipient,
      reason: 'subject.erased',
      // An attempt under way may yet reach WhatsApp: its worker no longer holds the message to say.
      ...(m.attempt_started_at !== null ? { attempt: Number(m.attempts), delivered: 'unknown' } : {}),
    },
  };
}

/** The share a `share.decided` entry (or queued body) is about, if its content names the pseudonym. */
function sharesNaming(entry: Record<string, unknown>, pseudonym: string): string[] {
  const subjects = Array.isArray(entry.subjects) ? (entry.subjects as { subject?: unknown }[]) : [];
  return typeof entry.share === 'string' && subjects.some((s) => s.subject === pseudonym) ? [entry.share] : [];
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
 * window record, WhatsApp's user id for them and the sandbox's copies; for a Workplace person,
 * the content of the shares that name them. A `subject.erased` entry, without personal data,
 * records that it happened. A WhatsApp contact known by two forms of one number
 * (whatsAppIdForms) is erased under each.
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
    const forms = subjectForms(subject);
    let answer: SubjectErased = { erased: false, audit: null };
    // The answer names the erasure under the form asked for, else under the other.
    for (const form of forms) {
      const erased = await this.erase(form);
      if (!answer.erased) answer = erased;
    }
    return answer;
  }

  private async erase(subject: SubjectRef): Promise<SubjectErased> {
    // The bulk of a long log is read before the transaction, so that shares are not held up meanwhile.
    const readBefore = subject.type === 'whatsapp' ? undefined : await this.sharesNamingInLog(subject);
    const entry = await this.transactions.run(async (manager) => {
      await this.transactions.exclusive(manager, `sluice:subject:${subject.type}:${subject.id}`);
      // Before anything is read: what a share that holds them is writing is then committed and cleared below.
      await this.subjectKeys.excludeHolders(manager, subject);
      const key = await this.subjectKeys.existingKey(manager, subject);
      // Without their key the entries' pseudonym is made under one kept nowhere: as unlinkable as theirs is about to be.
      const pseudonym = subjectPseudonym(key ?? randomBytes(32), subject);
      // Also when a retention sweep destroyed their key already: the clear copies are still here.
      const forgotten = await this.consents.forget(manager, subject);
      const contact =
        subject.type === 'whatsapp'
          ? await this.clearContact(manager, subject.id, pseudonym)
          : key
            ? await this.clearShareContents(manager, await this.sharesNaming(manager, pseudonym, readBefore))
            : { found: false, shares: 0, messages: 0, cancellations: [] };
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
    const cancellations = unsent.map((m) => cancelledByErasure(m, pseudonym));
    const theirMessages = await sql.rows<{ share_id: string }>(manager, `SELECT share_id FROM outbox_messages WHERE wa_id = ${p(1)}`, [waId]);
    // The number is replaced by a placeholder of its own in each share (the same in the share's
    // rows, so that its recipients' states still match its document): one placeholder for all of
    // them would tell whoever knows one share went to the person which others did.
    const theirShares = await sql.rows<{ share_id: string }>(manager, `SELECT share_id FROM share_recipients WHERE wa_id = ${p(1)} UNION SELECT share_id FROM outbox_messages WHERE wa_id = ${p(2)}`, [waId, waId]);
    const placeholders = inGroupsOf(theirShares.map((row): [string, string] => [row.share_id, `erased-${randomBytes(6).toString('hex')}`]), PLACEHOLDERS_PER_STATEMENT);
    /**
     * `CASE <column> WHEN <share> THEN <value> ... END` over a group, with its parameters first;
     * `next` numbers the parameters after them (SQLite's `?` are taken in the order they appear).
     */
    const perShare = (column: string, group: [string, string][], value: (placeholder: string) => string) => ({
      text: `CASE ${column} ${group.map((_, i) => `WHEN ${p(2 * i + 1)} THEN ${p(2 * i + 2)}`).join(' ')} END`,
      params: group.flatMap(([shareId, placeholder]) => [shareId, value(placeholder)]),
      next: (n: number) => p(2 * group.length + n),
      ids: (from: number) => group.map((_, i) => p(2 * group.length + from + i)).join(', '),
    });
    // The request bodies that named the number go, and WhatsApp's message id, which holds it in
    // base64 (its status webhooks then match nothing).
    for (const group of placeholders) {
      const cases = perShare('share_id', group, (placeholder) => placeholder);
      await manager.query(
        `UPDATE outbox_messages SET wa_id = ${cases.text}, payload = ${cases.next(1)}, fallback_payload = NULL, content_consents = NULL, message_id = NULL, retried_message_ids = NULL,
           updated_at = ${cases.next(2)} WHERE wa_id = ${cases.next(3)} AND share_id IN (${cases.ids(4)})`,
        [...cases.params, ERASED_REQUEST_TEXT, now, waId, ...group.map(([shareId]) => shareId)],
      );
    }
    const cancelledShares = [...new Set(unsent.map((m) => m.share_id))];
    const [{ n: shares } = { n: 0 }] = await sql.rows<{ n: number | string }>(manager, `SELECT COUNT(DISTINCT share_id) AS n FROM share_recipients WHERE wa_id = ${p(1)}`, [waId]);
    // One statement however many shares name them: shares that name anyone of this subject's lock
    // bucket wait for the erasure meanwhile (SubjectKeyService.excludeHolders). Documents are
    // JSON.stringify's output and a WhatsApp id is digits only, so the member's text is exact.
    const member = (id: string) => `"waId":${JSON.stringify(id)}`;
    for (const group of placeholders) {
      const cases = group.map((_, i) => `WHEN ${p(3 * i + 1)} THEN REPLACE(document, ${p(3 * i + 2)}, ${p(3 * i + 3)})`).join(' ');
      const ids = group.map((_, i) => p(3 * group.length + i + 1)).join(', ');
      await manager.query(`UPDATE shares SET document = CASE id ${cases} END WHERE id IN (${ids})`, [
        ...group.flatMap(([shareId, placeholder]) => [shareId, member(waId), member(placeholder)]),
        ...group.map(([shareId]) => shareId),
      ]);
    }
    for (const group of inGroupsOf(cancelledShares)) {
      await manager.query(
        `UPDATE share_recipients SET delivery_state = 'cancelled', delivery_updated_at = ${p(1)} WHERE wa_id = ${p(2)} AND delivery_state = 'queued' AND share_id IN (${group.map((_, i) => p(i + 3)).join(', ')})`,
        [now, waId, ...group],
      );
    }
    for (const group of placeholders) {
      const cases = perShare('share_id', group, (placeholder) => placeholder);
      await manager.query(`UPDATE share_recipients SET wa_id = ${cases.text} WHERE wa_id = ${cases.next(1)} AND share_id IN (${cases.ids(2)})`, [
        ...cases.params,
        waId,
        ...group.map(([shareId]) => shareId),
      ]);
    }
    // The minimised media of a share none of whose messages can still be sent, as when they are
    // sent, and in the worker's order (after the recipients). This recipient's copies have just
    // lost WhatsApp's id: none of them is sent again.
    await releaseFinishedMedia(manager, { holdAfterSendMs: this.config.mediaHoldAfterSendMs }, new Date(now), theirMessages.map((m) => m.share_id));
    const [held] = (await manager.query(
      `SELECT (SELECT COUNT(*) FROM whatsapp_contacts WHERE wa_id = ${p(1)}) + (SELECT COUNT(*) FROM sandbox_messages WHERE wa_id = ${p(2)})
         + (SELECT COUNT(*) FROM whatsapp_user_ids WHERE wa_id = ${p(3)}) AS n`,
      [waId, waId, waId],
    )) as { n: number | string }[];
    // The contact's service window (when they last wrote) and WhatsApp's user id for them are about them too.
    await manager.query(`DELETE FROM whatsapp_contacts WHERE wa_id = ${p(1)}`, [waId]);
    await manager.query(`DELETE FROM whatsapp_user_ids WHERE wa_id = ${p(1)}`, [waId]);
    await manager.query(`DELETE FROM sandbox_media WHERE outbox_id IN (SELECT outbox_id FROM sandbox_messages WHERE wa_id = ${p(1)})`, [waId]);
    await manager.query(`DELETE FROM sandbox_messages WHERE wa_id = ${p(1)}`, [waId]);
    const messages = theirMessages.length;
    return { found: Number(shares) + messages + Number(held!.n) > 0, shares: Number(shares), messages, cancellations };
  }

  /**
   * The shares whose content names the person (as its author, or tagged or mentioned in it), by
   * their pseudonym in the `share.decided` entries: sluice keeps no index from a person to shares.
   * Read outside the transaction, through the log's last index then.
   */
  private async sharesNamingInLog(subject: SubjectRef): Promise<SharesRead | undefined> {
    const manager = this.transactions.reader.manager;
    const key = await this.subjectKeys.existingKey(manager, subject);
    if (!key) return undefined;
    const pseudonym = subjectPseudonym(key, subject);
    const [{ last } = { last: -1 }] = await Sql.of(manager).rows<{ last: number | string | null }>(manager, 'SELECT MAX(idx) AS last FROM audit_entries');
    const entries = await this.auditLog.entriesNaming(manager, pseudonym, { kind: 'share.decided' });
    return { pseudonym, through: Number(last ?? -1), shares: new Set(entries.flatMap((e) => sharesNaming(e, pseudonym))) };
  }

  /** In the transaction: what was read before, and the entries sequenced or queued since. */
  private async sharesNaming(manager: EntityManager, pseudonym: string, before: SharesRead | undefined): Promise<string[]> {
    const known = before?.pseudonym === pseudonym ? before : { through: -1, shares: new Set<string>() };
    const shares = new Set(known.shares);
    // The queue first: an entry the sequencer moves to the log in between is then read there
    // (each statement reads what was committed before it began).
    for (const body of await this.auditLog.queuedEntriesNaming(manager, pseudonym, 'share.decided')) for (const share of sharesNaming(body, pseudonym)) shares.add(share);
    for (const entry of await this.auditLog.entriesNaming(manager, pseudonym, { kind: 'share.decided', after: known.through })) for (const share of sharesNaming(entry, pseudonym)) shares.add(share);
    return [...shares];
  }

  /**
   * Clears the content of shares that name the person: their messages' request bodies (the
   * author's name and the text, which would tie the log's entries about them to them again) and
   * the sandbox's copies become `{"erased":true}`, their photos and videos go, and the messages not
   * yet sent are cancelled, each with its final entry under its recipient's pseudonym.
   */
  private async clearShareContents(manager: EntityManager, shareIds: string[]): Promise<{ found: boolean; shares: number; messages: number; cancellations: AuditDraft[] }> {
    const sql = Sql.of(manager);
    const now = new Date().toISOString();
    const unsent: { id: string; share_id: string; wa_id: string; decision_entry: string; attempts: number | string; attempt_started_at: string | null }[] = [];
    let messages = 0;
    // In the worker's order: the outbox, the recipients, then the media.
    for (const group of inGroupsOf(shareIds)) {
      // Their rows held first (PostgreSQL), in id order as a status report holds them: a report
      // queuing one again meanwhile then either comes before (and its message is cancelled here)
      // or after (and finds the body cleared). Without the lock, the cancelling statement could
      // pass over a row it sees as sent while the next one cleared the body of a row queued again.
      if (sql.dialect === 'postgres') await sql.rows(manager, `SELECT id FROM outbox_messages WHERE share_id IN (${sql.params(group.length)}) ORDER BY id FOR UPDATE`, group);
      unsent.push(
        ...(await sql.rows<(typeof unsent)[number]>(
          manager,
          `UPDATE outbox_messages SET state = 'cancelled', claimed_by = NULL, claim_expires_at = NULL, updated_at = ${sql.params(1)}
             WHERE share_id IN (${sql.params(group.length, 2)}) AND state IN ('pending', 'claimed') RETURNING id, share_id, wa_id, decision_entry, attempts, attempt_started_at`,
          [now, ...group],
        )),
      );
      const cleared = await sql.rows(
        manager,
        `UPDATE outbox_messages SET payload = ${sql.params(1)}, fallback_payload = NULL, content_consents = NULL, updated_at = ${sql.params(1, 2)} WHERE share_id IN (${sql.params(group.length, 3)}) RETURNING id`,
        [ERASED_REQUEST_TEXT, now, ...group],
      );
      messages += cleared.length;
    }
    for (const group of inGroupsOf(shareIds)) {
      await sql.execute(manager, `UPDATE share_recipients SET delivery_state = 'cancelled', delivery_updated_at = ${sql.params(1)} WHERE share_id IN (${sql.params(group.length, 2)}) AND delivery_state = 'queued'`, [now, ...group]);
      await sql.execute(manager, `DELETE FROM media_objects WHERE share_id IN (${sql.params(group.length)})`, group);
      await sql.execute(manager, `UPDATE sandbox_messages SET body = ${sql.params(1)} WHERE outbox_id IN (SELECT id FROM outbox_messages WHERE share_id IN (${sql.params(group.length, 2)}))`, [
        ERASED_REQUEST_TEXT,
        ...group,
      ]);
      await sql.execute(manager, `DELETE FROM sandbox_media WHERE outbox_id IN (SELECT id FROM outbox_messages WHERE share_id IN (${sql.params(group.length)}))`, group);
    }
    const recipients = await this.subjectKeys.keysFor(manager, unsent.map((m) => ({ type: 'whatsapp', id: m.wa_id })));
    const cancellations = unsent.map((m) => cancelledByErasure(m, recipients.pseudonym({ type: 'whatsapp', id: m.wa_id })));
    return { found: shareIds.length > 0, shares: shareIds.length, messages, cancellations };
  }
}
