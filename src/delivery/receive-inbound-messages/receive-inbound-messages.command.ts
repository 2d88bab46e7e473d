import { Inject, Logger } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import type { EntityManager } from 'typeorm';
import { AuditLogService, type AuditDraft } from '../../audit/audit-log.service.js';
import { AuditSequencer } from '../../audit/audit-sequencer.js';
import { type ConsentChange, ConsentLedger } from '../../consent/consent-ledger.js';
import { WHATSAPP_NUMBER_CHANGE_METHOD, WHATSAPP_OPT_OUT_METHOD } from '../../consent/evidence-methods.js';
import { whatsAppIdForms } from '../../consent/subject.js';
import { TransactionRunner } from '../../platform/database/transaction-runner.js';
import { Traced } from '../../platform/observability/traced.js';
import { PolicyRegistry } from '../../policy/policy-registry.js';
import { DeliveryRecords } from '../delivery-records.js';
import { OutboxRepository } from '../outbox.repository.js';
import { ServiceWindows } from '../service-windows.js';
import { type UserIdSighting, WhatsAppUserIds } from '../whatsapp-user-ids.js';
import { InboundMessageLog } from '../webhooks/inbound-message-log.js';
import { isOptOut, type InboundMessage } from '../webhooks/whatsapp-notification.js';

export interface InboundMessagesReceived {
  /** Messages seen for the first time (not a repeated webhook delivery). */
  received: number;
  optOuts: number;
  /** Opt-outs from contacts known only by a user id that sluice has never seen with a number. */
  optOutsUnmatched: number;
  /** Contacts WhatsApp reported moved to another number. */
  numberChanges: number;
  /** Number changes of contacts known only by a user id that sluice has never seen with a number. */
  numberChangesUnmatched: number;
}

export class ReceiveInboundMessagesCommand extends Command<InboundMessagesReceived> {
  constructor(readonly messages: InboundMessage[]) {
    super();
  }
}

/**
 * Contacts' messages to the business number. Each opens (or extends) the contact's 24-hour
 * customer service window. An opt-out (STOP, afmelden, unsubscribe) withdraws the contact's
 * consent for every purpose through the consent ledger and cancels the contact's queued
 * messages, all audited, in one transaction. A message delivered twice is handled once. A
 * contact who writes without their number (a WhatsApp username) is found by their user id, if an
 * earlier webhook named it with their number; otherwise nothing sluice holds is theirs to change.
 *
 * WhatsApp's system messages are not the contact writing and open no window. One saying the
 * contact moved to another number ends everything held under the old one as an opt-out does (its
 * window too): the old number may be given to someone else, and the consent was the contact's,
 * not the new number's, which has none until the integration records one. One saying their user
 * id changed moves the number over to the new user id.
 */
@CommandHandler(ReceiveInboundMessagesCommand)
export class ReceiveInboundMessagesHandler implements ICommandHandler<ReceiveInboundMessagesCommand> {
  private readonly logger = new Logger('InboundMessages');

  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(InboundMessageLog) private readonly inbound: InboundMessageLog,
    @Inject(ServiceWindows) private readonly windows: ServiceWindows,
    @Inject(WhatsAppUserIds) private readonly userIds: WhatsAppUserIds,
    @Inject(ConsentLedger) private readonly consents: ConsentLedger,
    @Inject(OutboxRepository) private readonly outbox: OutboxRepository,
    @Inject(DeliveryRecords) private readonly records: DeliveryRecords,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(PolicyRegistry) private readonly policies: PolicyRegistry,
    @Inject(AuditSequencer) private readonly sequencer: AuditSequencer,
  ) {}

  @Traced('sluice.whatsapp.inbound', {
    result: (r: InboundMessagesReceived) => ({
      'sluice.inbound.received': r.received,
      'sluice.inbound.opt_outs': r.optOuts,
      'sluice.inbound.opt_outs_unmatched': r.optOutsUnmatched,
      'sluice.inbound.number_changes': r.numberChanges,
      'sluice.inbound.number_changes_unmatched': r.numberChangesUnmatched,
    }),
  })
  async execute({ messages }: ReceiveInboundMessagesCommand): Promise<InboundMessagesReceived> {
    if (messages.length === 0) return { received: 0, optOuts: 0, optOutsUnmatched: 0, numberChanges: 0, numberChangesUnmatched: 0 };
    const { counts: result, entries } = await this.transactions.run(async (manager) => {
      const now = new Date();
      const ended: EndedHere = { drafts: [], touched: new Set<string>(), entries: [] };
      const counts = { received: 0, optOuts: 0, optOutsUnmatched: 0, numberChanges: 0, numberChangesUnmatched: 0 };
      const named = messages.flatMap((m) => (m.from && m.fromUserId && m.system === undefined ? [{ userId: m.fromUserId, waId: m.from, at: m.sentAt }] : []));
      const sightings: UserIdSighting[] = [...named];
      const numbers = await this.userIds.numbersOf(manager, messages.flatMap((m) => (m.from === undefined && m.fromUserId ? [m.fromUserId] : [])));
      for (const { userId, waId } of named) numbers.set(userId, waId);
      for (const message of messages) {
        if (!(await this.inbound.firstSighting(manager, message.id, now))) continue;
        counts.received++;
        const { system } = message;
        const from = message.from ?? numbers.get(message.fromUserId!);
        if (system !== undefined && system.type !== 'other') {
          // What WhatsApp says of the user ids holds whether or not sluice can place the contact;
          // later messages of this delivery are read by it too.
          const number = system.type === 'user_changed_number' ? system.newWaId : from;
          if (system.previousUserId && system.previousUserId !== system.userId) this.replaceUserId(sightings, numbers, system.previousUserId, message.sentAt);
          if (system.userId && number) {
            sightings.push({ userId: system.userId, waId: number, at: message.sentAt });
            numbers.set(system.userId, number);
          }
        }
        if (from === undefined) {
          if (message.text !== undefined && isOptOut(message.text)) counts.optOutsUnmatched++;
          if (system?.type === 'user_changed_number') counts.numberChangesUnmatched++;
          continue;
        }
        // An Argentinian contact may be known here by either form of their number (whatsAppIdForms);
        // in one order, so that two webhooks naming either form never wait for each other crosswise.
        const forms = whatsAppIdForms(from).sort();
        if (system?.type === 'user_changed_number') {
          counts.numberChanges++;
          // The window first, as an inbound message writes it: a STOP and this never wait for each other crosswise.
          for (const form of forms) await this.windows.closeAsOf(manager, form, message.sentAt);
          const evidence = { method: WHATSAPP_NUMBER_CHANGE_METHOD, text: `WhatsApp message ${message.id}: the contact moved to another number`, capturedAt: message.sentAt.toISOString() };
          await this.endConsents(manager, forms, evidence, 'whatsapp_number_changed', ended);
          // Every user id that stood for the old number then goes with it, whether WhatsApp named it or not.
          const stoodFor = new Set([
            ...(await this.userIds.userIdsOf(manager, forms, message.sentAt)),
            ...sightings.filter((s) => !s.replaced && s.waId !== null && forms.includes(s.waId) && s.at.getTime() <= message.sentAt.getTime()).map((s) => s.userId),
          ]);
          if (system.userId) stoodFor.delete(system.userId);
          for (const userId of stoodFor) this.replaceUserId(sightings, numbers, userId, message.sentAt);
          continue;
        }
        if (system !== undefined) continue;
        for (const form of forms) await this.windows.recordInbound(manager, form, message.sentAt);
        if (message.text === undefined || !isOptOut(message.text)) continue;
        counts.optOuts++;
        const evidence = { method: WHATSAPP_OPT_OUT_METHOD, text: `"${message.text.trim()}" in WhatsApp message ${message.id}`, capturedAt: message.sentAt.toISOString() };
        await this.endConsents(manager, forms, evidence, 'whatsapp_opt_out', ended);
      }
      await this.inbound.forgetExpired(manager, now);
      // Last, in the order the status reports and an erasure write them: no two of them wait for each other crosswise.
      await this.records.releaseFinishedMedia(manager, ended.touched);
      await this.userIds.learn(manager, sightings);
      for (const queued of await this.auditLog.append(manager, ended.drafts)) ended.entries.push(queued.id);
      return { counts, entries: ended.entries };
    });
    // Answered once the withdrawals are in the log: an access report asked for after it shows them.
    if (entries.length > 0) await this.sequencer.awaitIndices(entries);
    if (result.optOuts > 0) this.logger.log(`${result.optOuts} opt-out(s) received: consent withdrawn, queued messages cancelled`);
    if (result.numberChanges > 0) this.logger.log(`${result.numberChanges} contact(s) moved to another WhatsApp number: consent under the old one withdrawn, queued messages cancelled`);
    if (result.optOutsUnmatched > 0) {
      this.logger.warn(`${result.optOutsUnmatched} opt-out(s) from contacts known only by a WhatsApp user id never seen with a phone number: nothing sluice holds is theirs`);
    }
    if (result.numberChangesUnmatched > 0) {
      this.logger.warn(`${result.numberChangesUnmatched} number change(s) of contacts known only by a WhatsApp user id never seen with a phone number: nothing sluice holds is theirs`);
    }
    return result;
  }

  /** WhatsApp replaced the user id at `at`: it stands for no number from then on. */
  private replaceUserId(sightings: UserIdSighting[], numbers: Map<string, string>, userId: string, at: Date): void {
    sightings.push({ userId, waId: numbers.get(userId) ?? null, at, replaced: true });
    numbers.delete(userId);
  }

  /**
   * Withdraws every purpose the contact granted and every one the active policies ask recipients'
   * consent for (so that a consent captured before and recorded after does not undo it), and
   * cancels their queued messages.
   */
  private async endConsents(manager: EntityManager, forms: string[], evidence: ConsentChange['evidence'], via: string, ended: EndedHere): Promise<void> {
    const purposes = this.policies.bundle.policies.flatMap((policy) => (policy.recipientConsent ? [policy.recipientConsent.purpose] : []));
    for (const form of forms) {
      ended.entries.push(...(await this.consents.withdrawAll(manager, { type: 'whatsapp', id: form }, evidence, purposes)));
      // Messages already being sent are left to the worker: its consent check before each attempt sees the withdrawal.
      for (const queued of await this.outbox.idleMessagesFor(manager, form)) {
        if (!(await this.outbox.cancelIfIdle(manager, queued))) continue;
        await this.records.advanceRecipient(manager, queued, 'cancelled');
        ended.touched.add(queued.shareId);
        ended.drafts.push(await this.records.entry(manager, 'message.cancelled', queued, { reason: 'recipient.consent_withdrawn', via }));
      }
    }
  }
}

/** What a delivery's opt-outs and number changes ended: their entries, and the shares whose messages they cancelled. */
interface EndedHere {
  drafts: AuditDraft[];
  touched: Set<string>;
  /** The ids of every audit entry written for them, to wait for their log indices. */
  entries: string[];
}
