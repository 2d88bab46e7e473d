import { canonicalWhatsAppId, SUBJECT_ID_PATTERNS } from '../../consent/subject.js';

/** A status report on a message sluice sent. */
export interface StatusReport {
  messageId: string;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  /** The contact's WhatsApp id. */
  recipient: string;
  /** The contact's business-scoped user id (BSUID), when WhatsApp sent it along. */
  recipientUserId?: string;
  reportedAt: Date;
  /** The outbox id sluice sent as biz_opaque_callback_data. */
  outboxId?: string;
  /** The first error's code, on a failed status. */
  errorCode?: number;
}

/**
 * A message a contact sent to the business phone number. A contact with a WhatsApp username may
 * write without their phone number (`from`): then only their business-scoped user id names them.
 */
export interface InboundMessage {
  id: string;
  from?: string;
  /** The contact's business-scoped user id (BSUID), when WhatsApp sent it along. */
  fromUserId?: string;
  sentAt: Date;
  /** The text of a text message, or of a quick-reply button the contact tapped. */
  text?: string;
  /** A system message: WhatsApp's own notice about the contact, not the contact writing. */
  system?: SystemNotice;
}

/**
 * What a system message tells. `user_changed_number`: the contact moved from `from` to `newWaId`
 * (WhatsApp gives them a new user id with it). `user_changed_user_id`: only their user id changed.
 * Any other notice is `other`.
 */
export type SystemNotice =
  | { type: 'user_changed_number'; newWaId?: string; userId?: string; previousUserId?: string }
  | { type: 'user_changed_user_id'; userId?: string; previousUserId?: string }
  | { type: 'other' };

export interface WhatsAppNotification {
  statuses: StatusReport[];
  messages: InboundMessage[];
  /** Items left out because they are not shaped as documented (counted for the log; their content is never logged). */
  skipped: number;
}

const STATUSES = new Set(['sent', 'delivered', 'read', 'failed']);
const MESSAGE_ID = /^[\x21-\x7e]{1,128}$/;
const OUTBOX_ID = /^out_[A-Za-z0-9_-]{1,40}$/;
/** A business-scoped user id: a country code, a dot, ENT. for a parent id, then the id. */
export const WHATSAPP_USER_ID = /^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$/;

/**
 * Reads a Cloud API webhook notification (object whatsapp_business_account, field messages):
 * status reports and inbound messages for the given phone number. Other numbers, other fields
 * and statuses sluice does not track (deleted, warning, ...) are ignored; malformed items are
 * skipped one by one, so one odd item does not make WhatsApp retry the whole delivery forever.
 * A time stamped after `receivedAt` is read as `receivedAt`: WhatsApp stamped the event before it
 * sent the notification, so a later stamp is a clock running ahead, and taken as it is it would
 * hold a contact's service window open, or date a STOP after consents given later, until then.
 */
export function readNotification(body: unknown, phoneNumberId: string | undefined, receivedAt = new Date()): WhatsAppNotification {
  const result: WhatsAppNotification = { statuses: [], messages: [], skipped: 0 };
  if (!isObject(body) || body.object !== 'whatsapp_business_account' || !Array.isArray(body.entry)) return { ...result, skipped: 1 };
  for (const entry of body.entry) {
    for (const change of isObject(entry) && Array.isArray(entry.changes) ? entry.changes : []) {
      if (!isObject(change) || change.field !== 'messages' || !isObject(change.value)) continue;
      const value = change.value;
      const metadata = isObject(value.metadata) ? value.metadata : {};
      if (phoneNumberId !== undefined && metadata.phone_number_id !== phoneNumberId) continue;
      for (const status of Array.isArray(value.statuses) ? value.statuses : []) {
        const report = readStatus(status, receivedAt);
        if (report === null) result.skipped++;
        else if (report !== undefined) result.statuses.push(report);
      }
      // The one contact a notification is about names their user id there too.
      const contacts = Array.isArray(value.contacts) ? value.contacts : [];
      const contactUserId = contacts.length === 1 && isObject(contacts[0]) ? userIdOf(contacts[0].user_id) : undefined;
      for (const message of Array.isArray(value.messages) ? value.messages : []) {
        const inbound = readMessage(message, contactUserId, receivedAt);
        if (inbound) result.messages.push(inbound);
        else result.skipped++;
      }
    }
  }
  return result;
}

/** undefined: a status sluice does not track; null: malformed. */
function readStatus(status: unknown, receivedAt: Date): StatusReport | undefined | null {
  if (!isObject(status)) return null;
  if (typeof status.status === 'string' && !STATUSES.has(status.status)) return undefined;
  const reportedAt = unixTime(status.timestamp, receivedAt);
  if (
    typeof status.id !== 'string' || !MESSAGE_ID.test(status.id) ||
    typeof status.status !== 'string' ||
    typeof status.recipient_id !== 'string' || !SUBJECT_ID_PATTERNS.whatsapp.test(status.recipient_id) ||
    !reportedAt
  ) {
    return null;
  }
  const outboxId = typeof status.biz_opaque_callback_data === 'string' && OUTBOX_ID.test(status.biz_opaque_callback_data) ? status.biz_opaque_callback_data : undefined;
  const firstError = Array.isArray(status.errors) && isObject(status.errors[0]) ? status.errors[0] : undefined;
  const recipientUserId = userIdOf(status.recipient_user_id);
  return {
    messageId: status.id,
    status: status.status as StatusReport['status'],
    recipient: canonicalWhatsAppId(status.recipient_id),
    ...(recipientUserId ? { recipientUserId } : {}),
    reportedAt,
    ...(outboxId ? { outboxId } : {}),
    ...(firstError && Number.isInteger(firstError.code) ? { errorCode: firstError.code as number } : {}),
  };
}

function readMessage(message: unknown, contactUserId: string | undefined, receivedAt: Date): InboundMessage | undefined {
  if (!isObject(message)) return undefined;
  const sentAt = unixTime(message.timestamp, receivedAt);
  const from = typeof message.from === 'string' && SUBJECT_ID_PATTERNS.whatsapp.test(message.from) ? canonicalWhatsAppId(message.from) : undefined;
  // A malformed number is not taken for an absent one. A malformed user id is left out (a STOP
  // with a valid number stands), and the contact's user id is then not read in its place.
  if (message.from !== undefined && from === undefined) return undefined;
  const system = message.type === 'system' ? readSystemNotice(message.system) : undefined;
  // A notice of a change names the contact by the user id they had: the one sluice may know.
  const previousUserId = system !== undefined && system.type !== 'other' ? system.previousUserId : undefined;
  const fromUserId = previousUserId ?? (message.from_user_id === undefined ? contactUserId : userIdOf(message.from_user_id));
  if (typeof message.id !== 'string' || !MESSAGE_ID.test(message.id) || (from === undefined && fromUserId === undefined) || !sentAt) return undefined;
  const text =
    message.type === 'text' && isObject(message.text) && typeof message.text.body === 'string'
      ? message.text.body
      : message.type === 'button' && isObject(message.button) && typeof message.button.text === 'string'
        ? message.button.text
        : undefined;
  return { id: message.id, ...(from ? { from } : {}), ...(fromUserId ? { fromUserId } : {}), sentAt, ...(text !== undefined ? { text } : {}), ...(system ? { system } : {}) };
}

/** Its body (the contact's profile name and both numbers in words) is never read. */
function readSystemNotice(system: unknown): SystemNotice {
  if (!isObject(system)) return { type: 'other' };
  const userId = userIdOf(system.user_id);
  const previousUserId = userIdOf(system.previous_user_id);
  const ids = { ...(userId ? { userId } : {}), ...(previousUserId ? { previousUserId } : {}) };
  if (system.type === 'user_changed_number') {
    // `wa_id` since Graph API v12; `new_wa_id` before.
    const given = system.wa_id ?? system.new_wa_id;
    const newWaId = typeof given === 'string' && SUBJECT_ID_PATTERNS.whatsapp.test(given) ? canonicalWhatsAppId(given) : undefined;
    return { type: 'user_changed_number', ...(newWaId ? { newWaId } : {}), ...ids };
  }
  if (system.type === 'user_changed_user_id') return { type: 'user_changed_user_id', ...ids };
  return { type: 'other' };
}

function userIdOf(value: unknown): string | undefined {
  return typeof value === 'string' && WHATSAPP_USER_ID.test(value) ? value : undefined;
}

/** WhatsApp stamps events in Unix seconds, as a string; never later than `latest`. */
function unixTime(value: unknown, latest: Date): Date | undefined {
  if (typeof value !== 'string' || !/^\d{1,12}$/.test(value)) return undefined;
  return new Date(Math.min(Number(value) * 1000, latest.getTime()));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const OPT_OUT_WORDS = new Set(['stop', 'afmelden', 'unsubscribe']);

/**
 * "STOP", "stop", "Afmelden.", " unsubscribe! ", "STOP 🛑", "ＳＴＯＰ": the whole message is one
 * opt-out word, in any case and width, with anything but letters and digits around it (punctuation,
 * symbols, emoji) and invisible format characters (a left-to-right mark) anywhere. A missed opt-out
 * keeps sending to someone who asked not to be sent anything.
 */
export function isOptOut(text: string): boolean {
  const word = text
    .normalize('NFKC')
    .replace(/\p{Cf}/gu, '')
    .replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '')
    .toLowerCase();
  return OPT_OUT_WORDS.has(word);
}
