import { describe, expect, it } from '@jest/globals';
import { createHmac } from 'node:crypto';
import { SIGNATURE_FORM } from '../../../src/delivery/webhooks/webhook-signature.js';
import { signatureMatches } from '../../../src/platform/auth/authenticate-before-body.js';
import { isOptOut, readNotification } from '../../../src/delivery/webhooks/whatsapp-notification.js';

const SECRET = 'app-secret-0123456789';
const PHONE = '106540352242922';
const sign = (body: string, secret = SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

const notification = (value: Record<string, unknown>, phoneNumberId = PHONE) => ({
  object: 'whatsapp_business_account',
  entry: [{ id: '1', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { phone_number_id: phoneNumberId }, ...value } }] }],
});

describe('webhook signature', () => {
  const body = JSON.stringify(notification({ statuses: [] }));
  const hasValidSignature = (bytes: Buffer, header: unknown, secret: string) => signatureMatches(bytes, header, SIGNATURE_FORM, secret);

  it('accepts the HMAC-SHA256 of the exact bytes under the app secret', () => {
    expect(hasValidSignature(Buffer.from(body), sign(body), SECRET)).toBe(true);
    expect(hasValidSignature(Buffer.from(body), sign(body).toUpperCase().replace('SHA256=', 'sha256='), SECRET)).toBe(true);
  });

  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['another secret', sign(body, 'another-secret-0123')],
    ['the digest of other bytes', sign(`${body} `)],
    ['a truncated digest', sign(body).slice(0, -2)],
    ['a SHA-1 signature', `sha1=${createHmac('sha1', SECRET).update(body).digest('hex')}`],
    ['several headers', [sign(body), sign(body)]],
  ])('refuses %s', (_label, header) => {
    expect(hasValidSignature(Buffer.from(body), header, SECRET)).toBe(false);
  });
});

describe('webhook notification', () => {
  it('reads statuses and inbound messages of the phone number', () => {
    const read = readNotification(
      notification({
        statuses: [
          { id: 'wamid.A', status: 'delivered', timestamp: '1764720000', recipient_id: '31612345678', biz_opaque_callback_data: 'out_abc' },
          { id: 'wamid.B', status: 'failed', timestamp: '1764720001', recipient_id: '31612345678', errors: [{ code: 131026, title: 'Message undeliverable' }] },
        ],
        messages: [
          { from: '31612345678', id: 'wamid.C', timestamp: '1764720002', type: 'text', text: { body: 'STOP' } },
          { from: '31612345678', id: 'wamid.D', timestamp: '1764720003', type: 'button', button: { text: 'Afmelden', payload: 'x' } },
          { from: '31612345678', id: 'wamid.E', timestamp: '1764720004', type: 'image', image: { id: '1' } },
        ],
      }),
      PHONE,
    );
    expect(read.skipped).toBe(0);
    expect(read.statuses).toEqual([
      { messageId: 'wamid.A', status: 'delivered', recipient: '31612345678', reportedAt: new Date(1764720000_000), outboxId: 'out_abc' },
      { messageId: 'wamid.B', status: 'failed', recipient: '31612345678', reportedAt: new Date(1764720001_000), errorCode: 131026 },
    ]);
    expect(read.messages).toEqual([
      { id: 'wamid.C', from: '31612345678', sentAt: new Date(1764720002_000), text: 'STOP' },
      { id: 'wamid.D', from: '31612345678', sentAt: new Date(1764720003_000), text: 'Afmelden' },
      { id: 'wamid.E', from: '31612345678', sentAt: new Date(1764720004_000) },
    ]);
  });

  it('reads a time stamped after the notification arrived as the time it arrived', () => {
    const receivedAt = new Date('2026-11-29T05:00:00Z');
    const ahead = String(receivedAt.getTime() / 1000 + 365 * 86400);
    const read = readNotification(
      notification({
        statuses: [{ id: 'wamid.A', status: 'read', timestamp: ahead, recipient_id: '31612345678' }],
        messages: [
          { from: '31612345678', id: 'wamid.B', timestamp: ahead, type: 'text', text: { body: 'STOP' } },
          { from: '31612345678', id: 'wamid.C', timestamp: String(receivedAt.getTime() / 1000 - 60), type: 'text', text: { body: 'hi' } },
        ],
      }),
      PHONE,
      receivedAt,
    );
    expect(read.statuses.map((s) => s.reportedAt)).toEqual([receivedAt]);
    expect(read.messages.map((m) => m.sentAt)).toEqual([receivedAt, new Date(receivedAt.getTime() - 60_000)]);
  });

  it('ignores other phone numbers, other fields and statuses sluice does not track; skips malformed items', () => {
    expect(readNotification(notification({ statuses: [{ id: 'wamid.A', status: 'read', timestamp: '1', recipient_id: '31612345678' }] }, '999'), PHONE)).toEqual({ statuses: [], messages: [], skipped: 0 });
    const read = readNotification(
      notification({
        statuses: [
          { id: 'wamid.A', status: 'deleted', timestamp: '1', recipient_id: '31612345678' },
          { id: 'wamid.B', status: 'read', timestamp: 'yesterday', recipient_id: '31612345678' },
          { id: 'wamid.C', status: 'read', timestamp: '1', recipient_id: '+31 6 1234' },
        ],
        messages: [{ from: '31612345678', id: 'wamid.D' }],
      }),
      PHONE,
    );
    expect(read).toEqual({ statuses: [], messages: [], skipped: 3 });
    expect(readNotification({ object: 'page', entry: [] }, PHONE).skipped).toBe(1);
    expect(readNotification('not json', PHONE).skipped).toBe(1);
  });

  it('reads the business-scoped user id WhatsApp sends along, and a message that names its writer by that id alone', () => {
    const read = readNotification(
      notification({
        statuses: [{ id: 'wamid.A', status: 'delivered', timestamp: '1764720000', recipient_id: '31612345678', recipient_user_id: 'NL.1502576394655843' }],
        contacts: [{ profile: { name: 'Ann' }, user_id: 'NL.777' }],
        messages: [
          { from: '31612345678', from_user_id: 'NL.1502576394655843', id: 'wamid.B', timestamp: '1764720001', type: 'text', text: { body: 'hi' } },
          { from_user_id: 'US.ENT.11815799212886844830', id: 'wamid.C', timestamp: '1764720002', type: 'text', text: { body: 'STOP' } },
          // No from_user_id: the one contact of the notification names it.
          { id: 'wamid.D', timestamp: '1764720003', type: 'text', text: { body: 'STOP' } },
        ],
      }),
      PHONE,
    );
    expect(read.skipped).toBe(0);
    expect(read.statuses).toEqual([expect.objectContaining({ recipient: '31612345678', recipientUserId: 'NL.1502576394655843' })]);
    expect(read.messages).toEqual([
      { id: 'wamid.B', from: '31612345678', fromUserId: 'NL.1502576394655843', sentAt: new Date(1764720001_000), text: 'hi' },
      { id: 'wamid.C', fromUserId: 'US.ENT.11815799212886844830', sentAt: new Date(1764720002_000), text: 'STOP' },
      { id: 'wamid.D', fromUserId: 'NL.777', sentAt: new Date(1764720003_000), text: 'STOP' },
    ]);
  });

  it('skips a message that names its writer by neither, or by a malformed number; leaves a malformed user id out', () => {
    const read = readNotification(
      notification({
        contacts: [{ profile: { name: 'A' } }, { profile: { name: 'B' }, user_id: 'NL.1' }],
        messages: [
          { id: 'wamid.A', timestamp: '1', type: 'text', text: { body: 'STOP' } },
          { from: '+31 6 1234', from_user_id: 'NL.1', id: 'wamid.B', timestamp: '1', type: 'text', text: { body: 'STOP' } },
          { from_user_id: 'nl.1', id: 'wamid.C', timestamp: '1', type: 'text', text: { body: 'STOP' } },
          { from: '31612345678', from_user_id: 'NL.1 OR 1=1', id: 'wamid.D', timestamp: '1', type: 'text', text: { body: 'STOP' } },
        ],
        statuses: [{ id: 'wamid.E', status: 'read', timestamp: '1', recipient_id: '31612345678', recipient_user_id: 'NL.' }],
      }),
      PHONE,
    );
    // A STOP with a valid number stands without its malformed user id.
    expect(read.messages).toEqual([{ id: 'wamid.D', from: '31612345678', sentAt: new Date(1000), text: 'STOP' }]);
    expect(read.skipped).toBe(3);
    // A malformed user id on a status is left out; the status stands on its number.
    expect(read.statuses).toEqual([expect.not.objectContaining({ recipientUserId: expect.anything() })]);
  });

  it("reads WhatsApp's system messages about a contact's number or user id, never their text", () => {
    const body = 'User Anna de Vries changed from 31612345678 to 31687654321';
    const read = readNotification(
      notification({
        messages: [
          { from: '31612345678', id: 'wamid.A', timestamp: '1', type: 'system', system: { body, wa_id: '31687654321', type: 'user_changed_number', user_id: 'NL.2', previous_user_id: 'NL.1' } },
          // Before Graph API v12 the new number came as new_wa_id.
          { from: '31612345678', id: 'wamid.B', timestamp: '1', type: 'system', system: { body, new_wa_id: '31687654321', type: 'user_changed_number' } },
          // A malformed new number leaves only the move away from the old one.
          { from: '31612345678', id: 'wamid.C', timestamp: '1', type: 'system', system: { body, wa_id: '+31 6 8765', type: 'user_changed_number' } },
          // Named by the user id it had, which sluice may know; without a number.
          { id: 'wamid.D', timestamp: '1', type: 'system', system: { body, type: 'user_changed_user_id', user_id: 'NL.4', previous_user_id: 'NL.3' } },
          { from: '31612345678', id: 'wamid.E', timestamp: '1', type: 'system', system: { body: 'Security code changed', type: 'customer_identity_changed', identity: 'x' } },
          { from: '31612345678', id: 'wamid.F', timestamp: '1', type: 'system' },
        ],
      }),
      PHONE,
    );
    const sentAt = new Date(1000);
    expect(read.messages).toEqual([
      { id: 'wamid.A', from: '31612345678', fromUserId: 'NL.1', sentAt, system: { type: 'user_changed_number', newWaId: '31687654321', userId: 'NL.2', previousUserId: 'NL.1' } },
      { id: 'wamid.B', from: '31612345678', sentAt, system: { type: 'user_changed_number', newWaId: '31687654321' } },
      { id: 'wamid.C', from: '31612345678', sentAt, system: { type: 'user_changed_number' } },
      { id: 'wamid.D', fromUserId: 'NL.3', sentAt, system: { type: 'user_changed_user_id', userId: 'NL.4', previousUserId: 'NL.3' } },
      { id: 'wamid.E', from: '31612345678', sentAt, system: { type: 'other' } },
      { id: 'wamid.F', from: '31612345678', sentAt, system: { type: 'other' } },
    ]);
    expect(JSON.stringify(read)).not.toContain('Anna');
  });

  it.each(['STOP', 'stop', 'Stop.', '  STOP!  ', 'afmelden', 'Afmelden', 'UNSUBSCRIBE', 'unsubscribe.', 'STOP 🛑', '🛑 stop', 'stop~', 'STOP\u200e', '\u200fstop', 'ＳＴＯＰ', 'Afmelden ✋'])('takes %j as an opt-out', (text) => {
    expect(isOptOut(text)).toBe(true);
  });

  it.each(['please stop', 'stop sending me this', 'stopped', 'STOP STOP', 'hello', '', '🛑', 'stop 2'])('does not take %j as an opt-out', (text) => {
    expect(isOptOut(text)).toBe(false);
  });
});
