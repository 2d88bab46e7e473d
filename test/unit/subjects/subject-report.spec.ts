import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { canonicalJson } from '../../../src/audit/domain/canonical-json.js';
import { keyedDigest, sealField } from '../../../src/audit/domain/pseudonym.js';
import { renderSubjectReportHtml } from '../../../src/subjects/get-subject-report/subject-report.html.js';
import { decodeSubjectReport, type SubjectReport } from '../../../src/subjects/get-subject-report/subject-report.js';

const ME = 'ps_me';
const policies = { retentionOf: () => undefined, asksRecipientConsent: () => undefined };
const at = (index: number) => ({ index, time: `2026-11-20T10:00:0${index}.000Z`, share: 'shr_1', outbox: 'out_1', recipient: ME });

describe('the messages to a person in their report', () => {
  const entries = [
    { kind: 'message.failed', ...at(1), attempt: 1, final: false, error: 'whatsapp.130429', nextAttemptAt: '2026-11-20T10:00:03.000Z' },
    { kind: 'message.sent', ...at(2), attempt: 2 },
    { kind: 'message.status', ...at(3), status: 'failed', error: 'whatsapp.131056', final: false },
    { kind: 'message.sent', ...at(4), attempt: 3 },
    { kind: 'message.status', ...at(5), status: 'delivered' },
    { kind: 'message.cancelled', ...at(6), reason: 'recipient.consent_withdrawn' },
    { kind: 'message.status', ...at(7), status: 'failed', error: 'whatsapp.131026' },
    { kind: 'message.sent', ...at(8), recipient: 'ps_someone_else' },
    // Another message: its attempt failed, but a status report showed an earlier copy got through.
    { kind: 'message.failed', ...at(9), outbox: 'out_2', attempt: 2, final: false, error: 'delivery.timeout' },
    { kind: 'message.sent', ...at(9), outbox: 'out_2', whatsappMessage: 'wamid.1', confirmedBy: 'status_webhook' },
  ];

  it('names each failure, and whether the message was then to be sent again', () => {
    const { deliveries } = decodeSubjectReport(ME, new Uint8Array(32), entries, policies, new Date('2026-11-21T00:00:00Z'), new Map());
    expect(deliveries.map((d) => [d.index, d.outcome, d.detail, d.error, d.sentAgain])).toEqual([
      [1, 'failed', null, 'whatsapp.130429', true],
      [2, 'sent', null, null, false],
      [3, 'status', 'failed', 'whatsapp.131056', true],
      [4, 'sent', null, null, false],
      [5, 'status', 'delivered', null, false],
      [6, 'cancelled', 'recipient.consent_withdrawn', null, false],
      [7, 'status', 'failed', 'whatsapp.131026', false],
      [9, 'failed', null, 'delivery.timeout', false],
      [9, 'sent', null, null, false],
    ]);
    expect(deliveries.map((d) => d.confirmedByStatus)).toEqual([false, false, false, false, false, false, false, false, true]);
  });

  it('says so in words on the page', () => {
    const { deliveries } = decodeSubjectReport(ME, new Uint8Array(32), entries, policies, new Date('2026-11-21T00:00:00Z'), new Map());
    const report: SubjectReport = { subject: { type: 'whatsapp', id: '31612345678' }, generatedAt: '2026-11-21T00:00:00.000Z', found: true, log: { size: 9, checkpoint: null }, consents: [], crossings: [], deliveries };
    const items = [...renderSubjectReportHtml(report).matchAll(/<li>[^:]+:\d\d:\d\d GMT: a message of share shr_1 ([^<]*)<\/li>/g)].map((m) => m[1]);
    expect(items).toEqual([
      'could not be sent (whatsapp.130429); it was then queued to be sent again',
      'was sent to WhatsApp',
      'was reported failed by WhatsApp (whatsapp.131056); it was then queued to be sent again',
      'was sent to WhatsApp',
      'was reported delivered by WhatsApp',
      'was cancelled before it was sent (recipient.consent_withdrawn)',
      'was reported failed by WhatsApp (whatsapp.131026)',
      'could not be sent (delivery.timeout)',
      "was sent to WhatsApp: WhatsApp's report on a copy sent earlier showed it had got through",
    ]);
  });
});

describe('purposes and methods the log holds only under the person\'s key, in their report', () => {
  const key = randomBytes(32);
  const evidence = { method: 'annelies-vermeulen', text: 'notice v3' };
  const consentEntry = (consent: string, index: number) => ({
    kind: 'consent.granted',
    index,
    time: '2026-11-20T10:00:00.000Z',
    consent,
    subject: ME,
    purpose: '(unlisted)',
    purposeDigest: keyedDigest(key, 'jan-de-vries-private'),
    evidence: { method: 'other', digest: keyedDigest(key, canonicalJson(evidence)) },
  });
  const shareEntry = (sharedBy: string) => ({
    kind: 'share.decided',
    index: 3,
    time: '2026-11-20T10:00:03.000Z',
    share: 'shr_1',
    purpose: '(unlisted)',
    purposeDigest: keyedDigest(key, 'jan-de-vries-private'),
    purposeSealed: sealField(key, 'jan-de-vries-private', 'share shr_1 purpose'),
    policy: { name: null, bundle: 'sha256:x' },
    sharedBy,
    recipients: [{ subject: 'ps_recipient', decision: 'denied', reasons: ['policy.none_matches'] }],
  });
  const decode = (entries: Record<string, unknown>[], recorded: Map<string, { purpose: string; evidence: Record<string, unknown> }>) =>
    decodeSubjectReport(ME, key, entries as Parameters<typeof decodeSubjectReport>[2], policies, new Date('2026-11-21T00:00:00Z'), recorded);

  it('shows a consent its purpose and method from the ledger, where the digests in the entry match them', () => {
    const recorded = new Map([['cns_1', { purpose: 'jan-de-vries-private', evidence }]]);
    expect(decode([consentEntry('cns_1', 1)], recorded).consents).toEqual([expect.objectContaining({ purpose: 'jan-de-vries-private', evidence: 'annelies-vermeulen' })]);
  });

  it('keeps (unlisted) and other when the ledger holds something else than the entry recorded', () => {
    const recorded = new Map([['cns_1', { purpose: 'another-purpose', evidence: { ...evidence, text: 'notice v4' } }]]);
    expect(decode([consentEntry('cns_1', 1), consentEntry('cns_2', 2)], recorded).consents.map((c) => [c.purpose, c.evidence])).toEqual([
      ['(unlisted)', 'other'],
      ['(unlisted)', 'other'],
    ]);
  });

  it('shows the one who shared the purpose they asked for, and anyone else (unlisted)', () => {
    expect(decode([shareEntry(ME)], new Map()).crossings.map((c) => c.purpose)).toEqual(['jan-de-vries-private']);
    expect(decodeSubjectReport('ps_recipient', randomBytes(32), [shareEntry(ME)] as Parameters<typeof decodeSubjectReport>[2], policies, new Date(), new Map()).crossings.map((c) => c.purpose)).toEqual(['(unlisted)']);
  });
});
