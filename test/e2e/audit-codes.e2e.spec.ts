/**
 * Codes an integration chooses (a consent's evidence method, a consent's or share's purpose) pass
 * the API's patterns yet can name a person, and the audit log is append-only: it must never hold
 * one in clear. Only well-known methods and purposes the policy bundle names appear as given;
 * anything else is `other` or `(unlisted)` with a keyed digest, readable to the person alone.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createHmac, randomUUID } from 'node:crypto';
import { AuditSequencer } from '../../src/audit/audit-sequencer.js';
import { verifyBundle } from '../../src/audit/verifier/bundle-verifier.js';
import { SLUICE_EVIDENCE_METHODS, WELL_KNOWN_EVIDENCE_METHODS } from '../../src/consent/evidence-methods.js';
import { EVIDENCE_METHOD_PATTERN } from '../../src/consent/record-consent/record-consent.dto.js';
import { PURPOSE_PATTERN } from '../../src/consent/subject.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, idempotencyKey, RECIPIENT, shareRequest } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

/** Valid codes that are names: neither may ever be in the log. */
const NAMED_METHOD = 'annelies-vermeulen';
const NAMED_PURPOSE = 'jan-de-vries-private';
const APP_SECRET = 'audit-codes-app-secret-0123456789';
/** Every purpose the shipped policy names (its own, and the one its consent rules ask for). */
const SHIPPED_PURPOSES: ReadonlySet<string> = new Set(['frontline-updates']);

type Entry = Record<string, unknown> & { kind: string; index: number };

describeEachDatabase('codes an integration chooses, in the audit log', (dialect) => {
  let sluice: RunningApp;
  let entries: Entry[];
  let logText: string;
  let unlistedShare: string;
  let listedShare: string;

  const consent = (purpose: string, method: string, status = 'granted', subject = { type: 'whatsapp', id: RECIPIENT }) =>
    sluice.request('POST', '/v1/consents', { body: { subject, purpose, status, evidence: { method, text: 'notice v3', capturedAt: new Date().toISOString() } } });
  const readLog = async (from = 0) => {
    await sluice.app.get(AuditSequencer).sequenceNow();
    const text = (await sluice.request('GET', `/v1/audit/entries?from=${from}`)).text;
    return { text, entries: text.split('\n').filter(Boolean).map((line) => JSON.parse((JSON.parse(line) as { entry: string }).entry) as Entry) };
  };

  beforeAll(async () => {
    sluice = await startTestApp(dialect, { env: { WHATSAPP_APP_SECRET: APP_SECRET } });
    // The API takes both as it always did: a consent may come before the policy that needs it.
    const named = await consent(NAMED_PURPOSE, NAMED_METHOD);
    expect([named.status, named.json.purpose, named.json.current]).toEqual([201, NAMED_PURPOSE, 'granted']);
    expect((await consent('frontline-updates', 'form')).status).toBe(201);
    expect((await consent('frontline-updates', 'form', 'granted', { type: 'workplace', id: AUTHOR_ID })).status).toBe(201);
    const unlisted = await sluice.request('POST', '/v1/shares', { body: shareRequest({ purpose: NAMED_PURPOSE }), headers: idempotencyKey() });
    expect([unlisted.status, unlisted.json.status, unlisted.json.reasons]).toEqual([201, 'denied', ['policy.none_matches']]);
    unlistedShare = unlisted.json.id;
    const listed = await sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: idempotencyKey() });
    expect([listed.status, listed.json.status]).toEqual([201, 'accepted']);
    listedShare = listed.json.id;
    // The contact writes STOP: every purpose they granted is withdrawn, the unlisted one too.
    const raw = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [{ id: '102290129340398', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' }, messages: [{ from: RECIPIENT, id: `wamid.${randomUUID()}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: 'STOP' } }] } }] }],
    });
    const signature = `sha256=${createHmac('sha256', APP_SECRET).update(raw).digest('hex')}`;
    expect((await sluice.request('POST', '/v1/webhooks/whatsapp', { body: raw, key: null, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature } })).status).toBe(200);
    ({ text: logText, entries } = await readLog());
  }, 120_000);
  afterAll(async () => {
    await sluice?.close();
  });

  const consentEntries = (kind: string) => entries.filter((e) => e.kind === kind && e.subjectType === 'whatsapp');
  const shareEntry = (share: string) => entries.find((e) => e.kind === 'share.decided' && e.share === share)!;

  it('holds neither the named method nor the named purpose anywhere, as served or as stored; nor does the consent ledger', async () => {
    expect(entries.length).toBeGreaterThanOrEqual(8);
    const stored = [
      ...(await sluice.database.adminQuery('SELECT * FROM audit_entries')),
      ...(await sluice.database.adminQuery('SELECT * FROM consent_events')),
    ].map((row) => JSON.stringify(row));
    for (const text of [logText, ...stored]) {
      expect(text).not.toMatch(/annelies|vermeulen|jan-de-vries|vries-private/i);
    }
  });

  it('names a well-known method and a purpose of the policies in clear, and anything else other and (unlisted) with a keyed digest', () => {
    const granted = consentEntries('consent.granted').map((e) => [e.purpose, e.evidence]);
    expect(granted).toEqual([
      ['(unlisted)', { method: 'other', digest: expect.stringMatching(/^hd_/) }],
      ['frontline-updates', { method: 'form', digest: expect.stringMatching(/^hd_/) }],
    ]);
    expect(consentEntries('consent.granted')[0]).toMatchObject({ purposeDigest: expect.stringMatching(/^hd_/) });
    expect(consentEntries('consent.granted')[1]).not.toHaveProperty('purposeDigest');
    // STOP: sluice's own method, the unlisted purpose withdrawn under its digest again.
    const withdrawn = consentEntries('consent.withdrawn');
    expect(withdrawn.map((e) => [e.purpose, (e.evidence as { method: string }).method]).sort()).toEqual([
      ['(unlisted)', 'whatsapp-opt-out'],
      ['frontline-updates', 'whatsapp-opt-out'],
    ]);
    // The same purpose of the same person: the same digest (a DPO holding the key can match them).
    expect(withdrawn.find((e) => e.purpose === '(unlisted)')!.purposeDigest).toBe(consentEntries('consent.granted')[0]!.purposeDigest);
    expect(shareEntry(unlistedShare)).toMatchObject({
      purpose: '(unlisted)',
      purposeDigest: expect.stringMatching(/^hd_/),
      purposeSealed: expect.stringMatching(/^sealed:v1:/),
      policy: { name: null },
      reasons: ['policy.none_matches'],
    });
    expect(shareEntry(listedShare)).toMatchObject({ purpose: 'frontline-updates', policy: { name: 'frontline-updates' } });
    expect(Object.keys(shareEntry(listedShare)).filter((key) => key.startsWith('purpose'))).toEqual(['purpose']);
  });

  it('shows the person their own purpose and method: in their consent history and their access report', async () => {
    const history = (await sluice.request('GET', `/v1/subjects/whatsapp/${RECIPIENT}/consents`)).json;
    expect(history.history.map((e: { purpose: string; status: string; evidence: { method: string } }) => [e.purpose, e.status, e.evidence.method]).sort()).toEqual([
      ['frontline-updates', 'granted', 'form'],
      ['frontline-updates', 'withdrawn', 'whatsapp-opt-out'],
      [NAMED_PURPOSE, 'granted', NAMED_METHOD],
      [NAMED_PURPOSE, 'withdrawn', 'whatsapp-opt-out'],
    ]);
    expect(history.current).toEqual(expect.arrayContaining([expect.objectContaining({ purpose: NAMED_PURPOSE, status: 'withdrawn' })]));

    const report = (await sluice.request('GET', `/v1/subjects/whatsapp/${RECIPIENT}/report`)).json;
    expect(report.consents.map((c: { purpose: string; status: string; evidence: string }) => [c.purpose, c.status, c.evidence]).sort()).toEqual([
      ['frontline-updates', 'granted', 'form'],
      ['frontline-updates', 'withdrawn', 'whatsapp-opt-out'],
      [NAMED_PURPOSE, 'granted', NAMED_METHOD],
      [NAMED_PURPOSE, 'withdrawn', 'whatsapp-opt-out'],
    ]);
    // The recipient did not ask for the share: its purpose is the sharer's to read.
    expect(report.crossings.map((c: { share: string; purpose: string }) => [c.share, c.purpose])).toEqual([
      [unlistedShare, '(unlisted)'],
      [listedShare, 'frontline-updates'],
    ]);
    const sharer = (await sluice.request('GET', `/v1/subjects/workplace/${AUTHOR_ID}/report`)).json;
    expect(sharer.crossings.map((c: { share: string; purpose: string; roles: string[] }) => [c.share, c.purpose, c.roles])).toEqual([
      // No policy decided it, yet the post is the author's: named as such either way.
      [unlistedShare, NAMED_PURPOSE, ['author', 'shared it']],
      [listedShare, 'frontline-updates', ['author', 'shared it']],
    ]);
    const page = (await sluice.request('GET', `/v1/subjects/workplace/${AUTHOR_ID}/report?format=html`)).text;
    expect(page).toContain(`Purpose <code>${NAMED_PURPOSE}</code>`);
  });

  it('exports a bundle that the offline verifier accepts', async () => {
    const publicKey = (await sluice.request('GET', '/v1/audit/public-key')).text.trim();
    for (const format of ['ndjson', 'csv']) {
      const bundle = await sluice.request('GET', `/v1/audit/export?format=${format}`);
      const report = await verifyBundle(Buffer.from(bundle.text, 'utf8'), { publicKey });
      expect([format, report.ok, report.failure]).toEqual([format, true, null]);
    }
  });

  it('never writes a purpose or method outside the allowed sets, whatever valid code it is given', async () => {
    // Values sluice writes itself (kinds, codes, the policy's names): a code equal to one is no leak.
    const vocabulary = new Set(entries.flatMap(stringsIn));
    const code = (pattern: RegExp, allowed: Iterable<string>) => fc.oneof(fc.constantFrom(...allowed), fc.stringMatching(pattern).filter((c) => !vocabulary.has(c) && !SLUICE_EVIDENCE_METHODS.has(c)));
    // sluice's own methods are refused from integrations (share-flow.e2e.spec.ts).
    const integrationMethods = [...WELL_KNOWN_EVIDENCE_METHODS].filter((m) => !SLUICE_EVIDENCE_METHODS.has(m));
    await fc.assert(
      fc.asyncProperty(code(PURPOSE_PATTERN, SHIPPED_PURPOSES), code(EVIDENCE_METHOD_PATTERN, integrationMethods), code(PURPOSE_PATTERN, SHIPPED_PURPOSES), async (purpose, method, sharePurpose) => {
        const recorded = await consent(purpose, method);
        const shared = await sluice.request('POST', '/v1/shares', { body: shareRequest({ purpose: sharePurpose }), headers: idempotencyKey() });
        expect([recorded.status, shared.status]).toEqual([201, 201]);
        const written = (await readLog(Math.min(recorded.json.audit.index, shared.json.audit.index))).entries.filter((e) => e.id === recorded.json.audit.entry || e.id === shared.json.audit.entry);
        const [consentEntry, shareEntry] = [written.find((e) => e.kind === 'consent.granted')!, written.find((e) => e.kind === 'share.decided')!];
        expect(consentEntry.purpose).toBe(SHIPPED_PURPOSES.has(purpose) ? purpose : '(unlisted)');
        expect((consentEntry.evidence as { method: string }).method).toBe(WELL_KNOWN_EVIDENCE_METHODS.has(method) ? method : 'other');
        expect(shareEntry.purpose).toBe(SHIPPED_PURPOSES.has(sharePurpose) ? sharePurpose : '(unlisted)');
        const strings = written.flatMap(stringsIn);
        for (const given of [purpose, sharePurpose].filter((p) => !SHIPPED_PURPOSES.has(p))) expect(strings).not.toContain(given);
        if (!WELL_KNOWN_EVIDENCE_METHODS.has(method)) expect(strings).not.toContain(method);
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});

/** Every string in a JSON value, keys included. */
function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([key, inner]) => [key, ...stringsIn(inner)]);
  return [];
}
