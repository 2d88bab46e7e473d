/**
 * Telemetry leaves no personal data (DESIGN.md invariant 4) — proven on the real thing.
 *
 * Design: the built server runs as a child process (`node dist/src/main.js`, as `npm start` runs
 * it) with its OTLP exporters pointed (OTEL_EXPORTER_OTLP_ENDPOINT, http/json) at a small OTLP
 * receiver this test runs on loopback, and its stdout/stderr captured. Only a real process gets
 * the auto-instrumentation of HTTP and PostgreSQL: jest runs test files as vm modules, where the
 * SDK's require hook does not see the modules load, so an in-process InMemorySpanExporter would
 * hold sluice's own spans only, and the URL attributes most likely to leak would never be made.
 *
 * The test then does what a busy day does, with names, phone numbers (WhatsApp ids, Dutch
 * national and international formats), e-mail addresses and IBANs everywhere: in posts, tags,
 * recipients, consent subjects, the codes an integration chooses (a consent's purpose and evidence
 * method, a share's purpose), URL paths (subject report, consents, erase), query strings
 * (?waId=), an X-Request-Id header, a malformed JSON body, an unknown route, an inbound STOP
 * webhook with the contact's profile name, and the delivery to the sandbox. It stops the server
 * (flushing its telemetry) and searches every captured byte — each OTLP request as received
 * (span names, attributes, events, links, status, resource; metric names and attributes), every
 * log line, every audit entry (GET /v1/audit/entries) and the DPO export — for each value in any
 * common formatting (with or without +, 00 or a national 0, spaces, dashes, dots, brackets,
 * URL-encoded), and for its unkeyed SHA-256.
 *
 * It cannot pass vacuously: the same patterns are shown to find every value in what the test
 * sent, and before searching, the capture must hold what the flow produces — HTTP server spans
 * named by route template, the share handler, policy evaluation, consent lookup, audit append
 * and sequencing, a delivery attempt (and PostgreSQL query spans on PostgreSQL); the decision,
 * reason, recogniser and delivery metrics and the request duration histogram by route; JSON log
 * lines for the requests with the trace ids of those spans; and the audit entries of the flow.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, createHmac, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudApiSimulator, simulatedUserId } from '../simulator/cloud-api-simulator.js';
import { ensureBuilt } from '../support/build.js';
import { createTestDatabase, describeEachDatabase, type Dialect, type TestDatabase } from '../support/databases.js';
import { REPO_ROOT, SHIPPED_POLICIES } from '../support/test-app.js';
import { eventually } from '../support/eventually.js';
import { pointsIn, type Received, spansIn, startOtlpReceiver } from '../support/otlp-receiver.js';

// ---- The personal data of the day ----

/** WhatsApp ids (E.164 without +) of the recipients: the first has consented, the second has not. */
const RECIPIENT = '31647291835';
const UNCONSENTED = '31658203746';
/** The number the second recipient moves to (WhatsApp's notice names both, and the contact's profile name). */
const MOVED_TO = '31662718394';
/** Phone numbers written in a post: a Dutch mobile in national format, an Amsterdam landline. */
const MOBILE_IN_TEXT = '31613572468';
const LANDLINE_IN_TEXT = '31207945832';
const AUTHOR = { id: '100048812345671', name: 'Annelies Vermeulen' };
const TAGGED = { id: '100049988776655', name: 'Joost Hoogendijk' };
const CONTACT_PROFILE_NAME = 'Fenna Visser';
const EMAILS = ['annelies.vermeulen@voorbeeld.nl', 'j.hoogendijk@example.com'];
const IBANS = ['NL91ABNA0417164300', 'DE89370400440532013000'];
const PHONES = [RECIPIENT, UNCONSENTED, MOVED_TO, MOBILE_IN_TEXT, LANDLINE_IN_TEXT];
const NAMES = [AUTHOR.name, TAGGED.name, CONTACT_PROFILE_NAME];
/** Workplace user ids: identifiers of people too (the log holds them only as pseudonyms). */
const WORKPLACE_IDS = [AUTHOR.id, TAGGED.id];
/** Valid codes an integration may choose that name people: a consent's evidence method, a purpose. */
const NAMED_METHOD = AUTHOR.name.toLowerCase().replace(' ', '-');
const NAMED_PURPOSE = `${TAGGED.name.toLowerCase().replace(' ', '-')}-private`;

const APP_SECRET = 'telemetry-leak-app-secret-0123456789';
const API_KEY = `test-${randomBytes(24).toString('hex')}`;

function post(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: '1234567890_987654321',
    message:
      `${TAGGED.name} opent vandaag het magazijn! Vragen? Bel ${TAGGED.name.split(' ')[0]} op 06-${MOBILE_IN_TEXT.slice(3)} ` +
      `of +31 (0)20 ${LANDLINE_IN_TEXT.slice(4, 7)} ${LANDLINE_IN_TEXT.slice(7)}, mail ${EMAILS[0]} of ${EMAILS[1]}. ` +
      `Declaraties naar NL91 ABNA 0417 1643 00 of ${IBANS[1]}. Doorgestuurd door +31 6 ${RECIPIENT.slice(3, 7)} ${RECIPIENT.slice(7)}.`,
    from: { id: AUTHOR.id, name: AUTHOR.name },
    created_time: '2026-11-20T09:12:44+0000',
    message_tags: [{ id: TAGGED.id, name: TAGGED.name, type: 'user', offset: 0, length: TAGGED.name.length }],
    place: { name: `Magazijn ${AUTHOR.name}`, location: { latitude: 52.09, longitude: 5.12 } },
    ...overrides,
  };
}

// ---- Finding a value in any common formatting ----

interface Secret {
  label: string;
  pattern: RegExp;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Between the digits of a phone number: nothing, or one of space, dash, dot, slash, brackets, "+", "%20". */
const DIGIT_GAP = '(?:[\\s.\\-/()+]|%20)?';

/**
 * A Dutch number (country code 31) by its national significant number, optionally preceded by
 * +31, 0031, 31, %2B31 (URL-encoded +) or the national 0, with (0) after the country code:
 * 31647291835, +31647291835, +31 6 4729 1835, 06-47291835, +31 (0)6 47 29 18 35, ...
 */
function phonePattern(e164: string): RegExp {
  const national = e164.replace(/^31/, '');
  const prefix = `(?:(?:\\+|00|%2B)?\\s?31${DIGIT_GAP}(?:\\(0\\)${DIGIT_GAP})?|0)?`;
  return new RegExp(`(?<!\\d)${prefix}${[...national].join(DIGIT_GAP)}(?!\\d)`, 'i');
}

/** Letters in order, with at most one space (or %20) between them, not inside a longer word. */
function spacedPattern(text: string): RegExp {
  return new RegExp(`(?<![A-Za-z0-9])${[...text.replace(/\s+/g, '')].map(escape).join('(?:\\s|%20)?')}(?![A-Za-z0-9])`, 'i');
}

function wordPattern(word: string): RegExp {
  return new RegExp(`(?<![A-Za-z])${escape(word)}(?![A-Za-z])`, 'i');
}

function hashesOf(label: string, value: string): Secret[] {
  const digest = createHash('sha256').update(value).digest();
  return [
    { label: `sha256 hex of ${label}`, pattern: new RegExp(digest.toString('hex'), 'i') },
    { label: `sha256 base64 of ${label}`, pattern: new RegExp(escape(digest.toString('base64').replace(/=+$/, ''))) },
    { label: `sha256 base64url of ${label}`, pattern: new RegExp(escape(digest.toString('base64url'))) },
  ];
}

const SECRETS: Secret[] = [
  ...PHONES.map((phone) => ({ label: `phone ${phone}`, pattern: phonePattern(phone) })),
  ...NAMES.flatMap((name) => [
    { label: `name ${name}`, pattern: new RegExp(name.split(' ').map(escape).join('(?:\\s|%20|\\+)+'), 'i') },
    ...name
      .split(' ')
      .filter((part) => part.length >= 5)
      .map((part) => ({ label: `name part ${part}`, pattern: wordPattern(part) })),
  ]),
  ...EMAILS.flatMap((email) => [
    { label: `e-mail ${email}`, pattern: new RegExp(escape(email), 'i') },
    { label: `e-mail ${email}, URL-encoded`, pattern: new RegExp(escape(encodeURIComponent(email)), 'i') },
    { label: `local part of ${email}`, pattern: wordPattern(email.split('@')[0]!) },
  ]),
  ...IBANS.map((iban) => ({ label: `IBAN ${iban}`, pattern: spacedPattern(iban) })),
  ...WORKPLACE_IDS.map((id) => ({ label: `Workplace id ${id}`, pattern: new RegExp(`(?<!\\d)${id}(?!\\d)`) })),
  ...[...PHONES, ...EMAILS, ...IBANS].flatMap((value) => hashesOf(value, value)),
  // A WhatsApp message id (wamid) carries the recipient's number in base64, from a byte offset
  // divisible by three: its first nine digits are whole base64 characters.
  ...PHONES.flatMap((phone) => [
    { label: `base64 of phone ${phone}`, pattern: new RegExp(escape(Buffer.from(phone.slice(0, 9)).toString('base64'))) },
    // The business-scoped user id WhatsApp (here the simulator) sends along with the number.
    { label: `user id of phone ${phone}`, pattern: new RegExp(escape(simulatedUserId(phone))) },
  ]),
];

/** Every secret found in a text, with a little of what surrounds it. */
function leaksIn(text: string): string[] {
  return SECRETS.flatMap(({ label, pattern }) => {
    const match = pattern.exec(text);
    return match ? [`${label}: …${text.slice(Math.max(0, match.index - 60), match.index + match[0].length + 60)}…`] : [];
  });
}

describe('the leak detector', () => {
  it('finds a phone number in every common formatting, and not in other numbers', () => {
    for (const written of ['31647291835', '+31647291835', '0031647291835', '+31 6 4729 1835', '+31 (0)6 47 29 18 35', '06-47291835', '0647291835', '06 4729 1835', '%2B31647291835', '/whatsapp/31647291835/report', 'waId=31647291835']) {
      expect([written, phonePattern(RECIPIENT).test(written)]).toEqual([written, true]);
    }
    for (const other of ['316472918350', '1764729183512', '31647291836', '2026-11-27T10:09:33.858Z']) expect([other, phonePattern(RECIPIENT).test(other)]).toEqual([other, false]);
  });

  it('finds IBANs with or without spaces and names in any case', () => {
    expect(spacedPattern(IBANS[0]!).test('NL91 ABNA 0417 1643 00')).toBe(true);
    expect(spacedPattern(IBANS[0]!).test('nl91abna0417164300')).toBe(true);
    expect(leaksIn('joost%20hoogendijk').length).toBeGreaterThan(0);
    expect(leaksIn('{"msg":"request completed","route":"/v1/subjects/:type/:id/report"}')).toEqual([]);
  });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- responses are asserted on as JSON
function parsed(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The spans and metrics the flow below must have produced before the capture counts as real. */
function missingTelemetry(received: Received[], dialect: Dialect): string[] {
  const spans = spansIn(received);
  const points = pointsIn(received);
  const span = (name: string) => spans.some((s) => s.name === name);
  const point = (metric: string, attributes: Record<string, unknown> = {}) =>
    points.some((p) => p.metric === metric && Object.entries(attributes).every(([key, value]) => p.attributes[key] === value));
  const expected: [string, boolean][] = [
    ['HTTP span POST /v1/shares', spans.some((s) => s.name === 'POST /v1/shares' && s.attributes['http.route'] === '/v1/shares')],
    ['HTTP span GET /v1/subjects/:type/:id/report', span('GET /v1/subjects/:type/:id/report')],
    ['HTTP span GET /v1/subjects/:type/:id/consents', span('GET /v1/subjects/:type/:id/consents')],
    ['HTTP span POST /v1/subjects/:type/:id/erase', span('POST /v1/subjects/:type/:id/erase')],
    ['HTTP span GET /v1/sandbox/messages', span('GET /v1/sandbox/messages')],
    ['HTTP span POST /v1/webhooks/whatsapp', span('POST /v1/webhooks/whatsapp')],
    ...['sluice.share.request', 'sluice.policy.evaluate', 'sluice.consent.lookup', 'sluice.consent.record', 'sluice.audit.append', 'sluice.audit.sequence', 'sluice.delivery.attempt', 'sluice.subject.report', 'sluice.subject.erase', 'sluice.whatsapp.inbound'].map(
      (name): [string, boolean] => [`span ${name}`, span(name)],
    ),
    ...(dialect === 'postgres' ? [['PostgreSQL query span', spans.some((s) => s.scope === '@opentelemetry/instrumentation-pg' && s.attributes['db.system.name'] === 'postgresql')] as [string, boolean]] : []),
    ['metric sluice.share.decisions (partially accepted)', point('sluice.share.decisions', { 'sluice.decision.status': 'partially_accepted', 'sluice.policy.name': 'frontline-updates' })],
    ['metric sluice.share.decisions (denied, no policy)', point('sluice.share.decisions', { 'sluice.decision.status': 'denied', 'sluice.policy.name': 'none' })],
    ['metric sluice.share.decision.reasons (recipient.no_consent)', point('sluice.share.decision.reasons', { 'sluice.reason.code': 'recipient.no_consent', 'sluice.reason.scope': 'recipient' })],
    ['metric sluice.share.decision.reasons (policy.none_matches)', point('sluice.share.decision.reasons', { 'sluice.reason.code': 'policy.none_matches', 'sluice.reason.scope': 'share' })],
    ...['phone', 'email', 'iban', 'mention'].map((type): [string, boolean] => [`metric sluice.policy.recogniser.hits (${type})`, point('sluice.policy.recogniser.hits', { 'sluice.recogniser.type': type })]),
    ['metric sluice.delivery.outcomes (sent)', point('sluice.delivery.outcomes', { 'sluice.delivery.outcome': 'sent', 'sluice.delivery.code': 'ok' })],
    ['metric sluice.outbox.messages', point('sluice.outbox.messages', { 'sluice.outbox.state': 'pending' })],
    ['metric sluice.audit.queue.depth', point('sluice.audit.queue.depth')],
    ['metric sluice.audit.sequencer.lag', point('sluice.audit.sequencer.lag')],
    ['metric http.server.request.duration by route', point('http.server.request.duration', { 'http.route': '/v1/subjects/:type/:id/report' })],
  ];
  return expected.filter(([, found]) => !found).map(([what]) => what);
}

/**
 * The built server as a child process, exporting its telemetry to `receiverUrl` and writing every
 * log line it can (LOG_LEVEL=verbose) to `capture`; resolves with its address once it listens.
 */
async function spawnGateway(database: TestDatabase, dataDir: string, receiverUrl: string, env: Record<string, string>, capture: (text: string) => void): Promise<{ server: ChildProcess; baseUrl: string }> {
  let output = '';
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('OTEL_') && key !== 'NODE_OPTIONS'));
  const server = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'main.js')], {
    env: {
      ...inherited,
      PORT: '0',
      HOST: '127.0.0.1',
      POLICIES_DIR: SHIPPED_POLICIES,
      DATA_DIR: dataDir,
      SLUICE_BOOTSTRAP_KEY: API_KEY,
      DELIVERY_POLL_MS: '50',
      // The most verbose level: every line sluice can write is searched.
      LOG_LEVEL: 'verbose',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_METRIC_EXPORT_INTERVAL: '300',
      OTEL_METRIC_EXPORT_TIMEOUT: '250',
      AUDIT_SIGNING_KEY: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      SLUICE_MASTER_KEY: randomBytes(32).toString('base64'),
      ...(database.config.type === 'sqlite' ? { SQLITE_PATH: database.config.path, DATABASE_URL: '' } : { DATABASE_URL: database.config.url }),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const take = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    capture(chunk.toString('utf8'));
  };
  server.stdout!.on('data', take);
  server.stderr!.on('data', take);
  const baseUrl = await eventually(
    () => (server.exitCode !== null ? Promise.reject(new Error(`the gateway exited:\n${output}`)) : /listening on (http:\/\/127\.0\.0\.1:\d+)\D/.exec(output)?.[1]),
    () => `the server to listen:\n${output}`,
  );
  return { server, baseUrl };
}

/** A clean stop (SIGTERM), which flushes the telemetry still batched. */
async function stopGateway(server: ChildProcess): Promise<void> {
  server.kill('SIGTERM');
  if (server.exitCode === null && server.signalCode === null) await once(server, 'exit');
}

/** After a failed run: the gateway must not outlive the test. */
async function killGateway(server: ChildProcess | undefined): Promise<void> {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  server.kill('SIGKILL');
  await once(server, 'exit');
}

describeEachDatabase('telemetry leaves no personal data', (dialect) => {
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let database: TestDatabase;
  let server: ChildProcess | undefined;
  let output = '';
  let baseUrl: string;
  /** Everything the test sent, for the detector's positive control. */
  const sent: string[] = [];
  /** What the server answered with from the audit log. */
  let auditEntries = '';
  let auditExport = '';
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-data-'));

  const call = async (method: string, path: string, options: { body?: unknown; raw?: string; headers?: Record<string, string>; key?: boolean } = {}) => {
    const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    const headers = { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(options.key === false ? {} : { authorization: `Bearer ${API_KEY}` }), ...options.headers };
    sent.push(`${method} ${path}`, JSON.stringify(headers), body ?? '');
    const response = await fetch(`${baseUrl}${path}`, { method, headers, body });
    const text = await response.text();
    return { status: response.status, text, json: parsed(text) };
  };

  beforeAll(async () => {
    ensureBuilt();
    receiver = await startOtlpReceiver();
    database = await createTestDatabase(dialect);
    const started = await spawnGateway(database, dataDir, receiver.url, { WHATSAPP_APP_SECRET: APP_SECRET }, (text) => (output += text));
    server = started.server;
    baseUrl = started.baseUrl;

    // Consent: the first recipient (WhatsApp) and the author (Workplace); the second recipient and the tagged colleague have none.
    for (const [type, id] of [['whatsapp', RECIPIENT], ['workplace', AUTHOR.id]]) {
      const granted = await call('POST', '/v1/consents', {
        body: { subject: { type, id }, purpose: 'frontline-updates', status: 'granted', evidence: { method: 'form', text: `Ik, ${AUTHOR.name} (${EMAILS[0]}), ga akkoord`, capturedAt: '2026-11-01T10:00:00Z' } },
      });
      expect(granted.status).toBe(201);
    }
    // The method is a code: free text there is refused, not recorded.
    const described = await call('POST', '/v1/consents', {
      body: { subject: { type: 'whatsapp', id: RECIPIENT }, purpose: 'frontline-updates', status: 'granted', evidence: { method: `e-mail from ${EMAILS[0]}` } },
    });
    expect(described.status).toBe(400);
    // A code that names people is valid, and taken: no policy names the purpose, the method is no well-known one.
    const named = await call('POST', '/v1/consents', { body: { subject: { type: 'whatsapp', id: RECIPIENT }, purpose: NAMED_PURPOSE, status: 'granted', evidence: { method: NAMED_METHOD } } });
    expect(named.status).toBe(201);
    const idempotency = { 'idempotency-key': randomUUID() };
    const shareBody = { purpose: 'frontline-updates', sharedBy: { workplaceUserId: AUTHOR.id }, post: post(), recipients: [{ waId: RECIPIENT }, { waId: UNCONSENTED }] };
    const share = await call('POST', '/v1/shares', { body: shareBody, headers: idempotency });
    expect([share.status, share.json?.status]).toEqual([201, 'partially_accepted']);
    expect((await call('POST', '/v1/shares', { body: shareBody, headers: idempotency })).status).toBe(200);
    const denied = await call('POST', '/v1/shares', { body: { ...shareBody, purpose: NAMED_PURPOSE }, headers: { 'idempotency-key': randomUUID() } });
    expect(denied.json?.reasons).toEqual(['policy.none_matches']);
    // Invalid input, whose values an error message could quote.
    expect((await call('POST', '/v1/shares', { raw: `{"purpose": "frontline-updates", "post": {"message": ${TAGGED.name} 06-${MOBILE_IN_TEXT.slice(3)}}}`, headers: { 'idempotency-key': randomUUID() } })).status).toBe(400);
    expect((await call('POST', '/v1/shares', { body: { ...shareBody, recipients: [{ waId: `+31 6 ${UNCONSENTED.slice(3)}` }] }, headers: { 'idempotency-key': randomUUID() } })).status).toBe(400);
    expect((await call('GET', `/v1/nowhere/${RECIPIENT}?${EMAILS.map((email) => `email=${encodeURIComponent(email)}`).join('&')}`)).status).toBe(404);
    // A caller's request id is not taken over, not even as 32 hex digits (a phone number inside),
    // nor a trace state.
    for (const given of [RECIPIENT, RECIPIENT.padStart(32, 'a')]) {
      // With a trace to join, whose tracestate and baggage are free text.
      const trace = { traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`, tracestate: `x=${EMAILS[0]}`, baggage: `phone=${RECIPIENT}` };
      const withId = await fetch(`${baseUrl}/v1/subjects/whatsapp/${RECIPIENT}/consents`, { headers: { authorization: `Bearer ${API_KEY}`, 'x-request-id': given, ...trace } });
      sent.push(`x-request-id: ${given}`);
      expect([withId.status, withId.headers.get('x-request-id')?.startsWith('req_')]).toEqual([200, true]);
    }

    await eventually(
      async () => ((await call('GET', `/v1/shares/${share.json.id}`)).json?.recipients?.find((r: { waId: string }) => r.waId === RECIPIENT)?.delivery === 'sent' ? true : undefined),
      () => 'the delivery to the sandbox',
    );
    const delivered = await call('GET', `/v1/sandbox/messages?waId=${RECIPIENT}`);
    expect(delivered.json).toHaveLength(1);
    expect((await call('GET', `/v1/subjects/whatsapp/${RECIPIENT}/report`)).status).toBe(200);
    expect((await call('GET', `/v1/subjects/workplace/${TAGGED.id}/report?format=html`)).status).toBe(200);

    /** A signed inbound webhook, as WhatsApp sends it. */
    const webhook = async (value: Record<string, unknown>) => {
      const raw = JSON.stringify({
        object: 'whatsapp_business_account',
        entry: [{ id: '102290129340398', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' }, ...value } }] }],
      });
      const signature = `sha256=${createHmac('sha256', APP_SECRET).update(raw).digest('hex')}`;
      expect((await call('POST', '/v1/webhooks/whatsapp', { raw, key: false, headers: { 'x-hub-signature-256': signature } })).status).toBe(200);
    };
    const messageId = () => `wamid.HBgL${randomBytes(24).toString('base64url')}`;
    const now = () => String(Math.floor(Date.now() / 1000));
    // The recipient writes STOP: the webhook names the contact's number and profile name.
    await webhook({ contacts: [{ profile: { name: CONTACT_PROFILE_NAME }, wa_id: RECIPIENT }], messages: [{ from: RECIPIENT, id: messageId(), timestamp: now(), type: 'text', text: { body: 'STOP' } }] });
    expect((await call('GET', `/v1/subjects/whatsapp/${RECIPIENT}/consents`)).json?.current).toEqual([
      expect.objectContaining({ purpose: 'frontline-updates', status: 'withdrawn' }),
      expect.objectContaining({ purpose: NAMED_PURPOSE, status: 'withdrawn' }),
    ]);
    // The other contact moves to another number: WhatsApp's notice names both and the contact's name.
    const system = { body: `User ${CONTACT_PROFILE_NAME} changed from ${UNCONSENTED} to ${MOVED_TO}`, wa_id: MOVED_TO, type: 'user_changed_number' };
    await webhook({ messages: [{ from: UNCONSENTED, id: messageId(), timestamp: now(), type: 'system', system }] });
    expect((await call('GET', `/v1/subjects/whatsapp/${UNCONSENTED}/consents`)).json?.current).toEqual([expect.objectContaining({ status: 'withdrawn' })]);
    expect((await call('POST', `/v1/subjects/whatsapp/${UNCONSENTED}/erase`)).json?.erased).toBe(true);

    auditEntries = (await call('GET', '/v1/audit/entries')).text;
    auditExport = (await call('GET', '/v1/audit/export?format=ndjson')).text + (await call('GET', '/v1/audit/export?format=csv')).text;

    await eventually(
      () => (missingTelemetry(receiver.received, dialect).length === 0 ? true : undefined),
      () => `the telemetry of the flow; still missing: ${missingTelemetry(receiver.received, dialect).join(', ')}`,
    );
    await stopGateway(server);
  }, 180_000);

  afterAll(async () => {
    await killGateway(server);
    receiver?.server.closeAllConnections();
    receiver?.server.close();
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('searches a real capture: the detector finds every value in what was sent, and the server handled it', async () => {
    const sentText = sent.join('\n');
    // Digests, base64 forms and WhatsApp user ids are never sent as such (the Cloud API path below sends the latter two).
    expect(SECRETS.filter((s) => !/^(sha256|base64|user id) /.test(s.label)).filter((s) => !s.pattern.test(sentText)).map((s) => s.label)).toEqual([]);
    // A clean stop (SIGTERM raised again once shut down, its telemetry flushed), not a crash.
    expect([0, 'SIGTERM']).toContain(server!.exitCode ?? server!.signalCode);
    expect(missingTelemetry(receiver.received, dialect)).toEqual([]);
    expect(auditEntries.split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(8);
    for (const kind of ['share.decided', 'message.sent', 'consent.granted', 'consent.withdrawn', 'subject.erased']) expect(auditEntries).toContain(`\\"kind\\":\\"${kind}\\"`);
  });

  it('writes structured JSON log lines, with the route template and the trace id of the request', () => {
    const lines = output.split('\n').filter(Boolean);
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const completed = records.filter((r) => r.msg === 'request completed');
    expect(completed.length).toBeGreaterThanOrEqual(15);
    const report = completed.find((r) => r.route === '/v1/subjects/:type/:id/report');
    expect(report).toMatchObject({ level: 'info', method: 'GET', statusCode: 200, reqId: expect.stringMatching(/^req_/), trace_id: expect.stringMatching(/^[0-9a-f]{32}$/) });
    const traceIds = new Set(spansIn(receiver.received).map((s) => s.traceId));
    expect(completed.filter((r) => typeof r.trace_id === 'string' && traceIds.has(r.trace_id)).length).toBe(completed.length);
    const notFound = completed.find((r) => r.statusCode === 404);
    expect(notFound).toMatchObject({ method: 'GET', msg: 'request completed' });
    expect(notFound).not.toHaveProperty('route');
  });

  it('sends spans without URL, client or error-message attributes', () => {
    const spans = spansIn(receiver.received);
    const forbidden = spans.flatMap((s) => Object.keys(s.attributes).filter((key) => /^(url\.(full|path|query)|http\.(target|url)|client\.address|user_agent\.original|exception\.message)$/.test(key)).map((key) => `${s.name}: ${key}`));
    expect(forbidden).toEqual([]);
    expect(spans.find((s) => s.name === 'GET /v1/subjects/:type/:id/report')?.attributes).toMatchObject({ 'http.route': '/v1/subjects/:type/:id/report', 'http.response.status_code': 200 });
  });

  it.each([
    ['the spans', () => receiver.received.filter((r) => r.path === '/v1/traces').map((r) => r.text)],
    ['the metrics', () => receiver.received.filter((r) => r.path === '/v1/metrics').map((r) => r.text)],
    ['the log lines', () => [output]],
    ['the audit entries', () => [auditEntries]],
    ['the audit export', () => [auditExport]],
  ])('finds no personal data in %s', (_what, texts) => {
    const captured = texts();
    expect(captured.join('').length).toBeGreaterThan(0);
    expect(captured.flatMap(leaksIn)).toEqual([]);
  });
});

/**
 * The same search over the Cloud API path, which the sandbox does not take: a send refused once
 * (500) and retried, a final error whose Graph message quotes the number, status webhooks
 * (delivered, read, failed) about message ids that carry the number in base64, an inbound message
 * that names and numbers people, and a server fault (a 500) whose database error quotes a number.
 */
describeEachDatabase('telemetry leaves no personal data on the Cloud API path', (dialect) => {
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let database: TestDatabase;
  let simulator: CloudApiSimulator;
  let server: ChildProcess | undefined;
  let output = '';
  let baseUrl: string;
  const sent: string[] = [];
  let auditEntries = '';
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-data-'));

  const call = async (method: string, path: string, body?: unknown) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    sent.push(`${method} ${path}`, text ?? '');
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${API_KEY}`, ...(text !== undefined ? { 'content-type': 'application/json', 'idempotency-key': randomUUID() } : {}) },
      body: text,
    });
    const answer = await response.text();
    return { status: response.status, json: parsed(answer), text: answer };
  };
  const shareTo = (waId: string) => call('POST', '/v1/shares', { purpose: 'frontline-updates', sharedBy: { workplaceUserId: AUTHOR.id }, post: post(), recipients: [{ waId }] });
  const deliveryOf = async (shareId: string) => (await call('GET', `/v1/shares/${shareId}`)).json?.recipients?.[0]?.delivery as string | undefined;
  const untilDelivered = (shareId: string, state: string) => eventually(async () => ((await deliveryOf(shareId)) === state ? true : undefined), () => `share ${shareId} to be ${state}`);

  beforeAll(async () => {
    ensureBuilt();
    receiver = await startOtlpReceiver();
    database = await createTestDatabase(dialect);
    simulator = await CloudApiSimulator.start();
    const started = await spawnGateway(
      database,
      dataDir,
      receiver.url,
      { ...simulator.sluiceEnv(), WHATSAPP_TIMEOUT_MS: '1000', DELIVERY_LEASE_MS: '5000', DELIVERY_RETRY_BASE_MS: '20', DELIVERY_MAX_ATTEMPTS: '3' },
      (text) => (output += text),
    );
    server = started.server;
    baseUrl = started.baseUrl;
    simulator.webhookUrl = `${baseUrl}/v1/webhooks/whatsapp`;

    for (const [type, id] of [['whatsapp', RECIPIENT], ['whatsapp', UNCONSENTED], ['workplace', AUTHOR.id]]) {
      expect((await call('POST', '/v1/consents', { subject: { type, id }, purpose: 'frontline-updates', status: 'granted', evidence: { method: 'whatsapp-opt-in' } })).status).toBe(201);
    }
    // Both contacts write first (the 24-hour window), one of them with names and numbers.
    const inbound = `Hoi, ${CONTACT_PROFILE_NAME} hier, bel me op 06-${MOBILE_IN_TEXT.slice(3)} of mail ${EMAILS[1]}`;
    sent.push(inbound);
    await simulator.receiveText(RECIPIENT, inbound);
    await simulator.receiveText(UNCONSENTED, 'hi');

    simulator.inject({ kind: 'error', httpStatus: 500, code: 131000, message: `Something went wrong sending to +${RECIPIENT}` }, { endpoint: 'messages' });
    const retried = await shareTo(RECIPIENT);
    expect(retried.status).toBe(201);
    await untilDelivered(retried.json.id, 'sent');
    simulator.inject({ kind: 'error', httpStatus: 400, code: 131026, message: `Message undeliverable to ${UNCONSENTED}` }, { endpoint: 'messages' });
    const refused = await shareTo(UNCONSENTED);
    await untilDelivered(refused.json.id, 'failed');
    const later = await shareTo(RECIPIENT);
    await untilDelivered(later.json.id, 'sent');
    const [first, second] = simulator.messagesTo(RECIPIENT);
    sent.push(first!.wamid, second!.wamid);
    await simulator.sendStatus(first!, 'delivered');
    await simulator.sendStatus(first!, 'read');
    await simulator.sendStatus(second!, 'failed', { errorCode: 131050 });
    await simulator.changeNumber(UNCONSENTED, MOVED_TO, { name: CONTACT_PROFILE_NAME });

    // A server fault: the database refuses the share with an error that quotes a number.
    if (dialect === 'sqlite') {
      await database.adminQuery(`CREATE TRIGGER leak_probe BEFORE INSERT ON shares BEGIN SELECT RAISE(ABORT, 'refused for ${RECIPIENT}'); END`);
    } else {
      await database.adminQuery(`CREATE FUNCTION leak_probe() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused for ${RECIPIENT}'; END $$`);
      await database.adminQuery('CREATE TRIGGER leak_probe BEFORE INSERT ON shares FOR EACH ROW EXECUTE FUNCTION leak_probe()');
    }
    expect((await shareTo(RECIPIENT)).status).toBe(500);
    await database.adminQuery(dialect === 'sqlite' ? 'DROP TRIGGER leak_probe' : 'DROP TRIGGER leak_probe ON shares');
    // The key store failing: the key check, before any route runs, answers 500 and logs the fault.
    await database.adminQuery('ALTER TABLE api_keys RENAME TO api_keys_away');
    expect((await call('GET', `/v1/subjects/whatsapp/${RECIPIENT}/consents`)).status).toBe(500);
    await database.adminQuery('ALTER TABLE api_keys_away RENAME TO api_keys');

    // The webhooks' entries are sequenced by the next pass: the log is read once they are in it.
    auditEntries = await eventually(async () => {
      const entries = (await call('GET', '/v1/audit/entries')).text;
      const statuses = entries.split('\n').filter((line) => line.includes('message.status')).length;
      return statuses === 3 && entries.includes('whatsapp-number-change') ? entries : undefined;
    }, 'the status and number change entries in the log');
    const expected = () => {
      const spans = spansIn(receiver.received);
      const points = pointsIn(receiver.received);
      const point = (attributes: Record<string, unknown>) => points.some((p) => p.metric === 'sluice.delivery.outcomes' && Object.entries(attributes).every(([key, value]) => p.attributes[key] === value));
      return [
        ['span sluice.delivery.attempt', spans.some((s) => s.name === 'sluice.delivery.attempt')],
        ['span sluice.whatsapp.statuses', spans.some((s) => s.name === 'sluice.whatsapp.statuses')],
        ['span POST /v1/shares answered 500', spans.some((s) => s.name === 'POST /v1/shares' && s.attributes['http.response.status_code'] === 500)],
        ['retry metric', point({ 'sluice.delivery.outcome': 'retry', 'sluice.delivery.code': 'whatsapp.131000' })],
        ['failed metric', point({ 'sluice.delivery.outcome': 'failed', 'sluice.delivery.code': 'whatsapp.131026' })],
        ['reported failure metric', point({ 'sluice.delivery.outcome': 'failed', 'sluice.delivery.source': 'status_webhook' })],
      ].filter(([, found]) => !found).map(([what]) => what as string);
    };
    await eventually(() => (expected().length === 0 ? true : undefined), () => `the telemetry of the flow; still missing: ${expected().join(', ')}`);
    await stopGateway(server);
  }, 180_000);

  afterAll(async () => {
    await killGateway(server);
    await simulator?.close();
    receiver?.server.closeAllConnections();
    receiver?.server.close();
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('searches a real capture: the numbers are in what was sent (message ids included), and the flow left its traces', () => {
    // What the test sent, and the webhooks WhatsApp (the simulator) sent with the contacts' user ids.
    const sentText = [...sent, ...simulator.webhooksSent].join('\n');
    for (const label of [`phone ${RECIPIENT}`, `phone ${UNCONSENTED}`, `phone ${MOVED_TO}`, `base64 of phone ${RECIPIENT}`, `user id of phone ${RECIPIENT}`, `user id of phone ${MOVED_TO}`, `phone ${MOBILE_IN_TEXT}`, `e-mail ${EMAILS[1]}`]) {
      expect([label, SECRETS.find((s) => s.label === label)!.pattern.test(sentText)]).toEqual([label, true]);
    }
    for (const kind of ['message.failed', 'message.sent', 'message.status']) expect(auditEntries).toContain(`\\"kind\\":\\"${kind}\\"`);
    // The number change was logged, as a count (its consent withdrawals are in the log: see beforeAll).
    expect(output).toMatch(/"msg":"1 contact\(s\) moved to another WhatsApp number/);
    // The faults were logged, by type only.
    expect(output).toMatch(/"msg":"POST \/v1\/shares failed: /);
    expect(output).toMatch(/"msg":"GET \/v1\/subjects\/:type\/:id\/consents failed: /);
  });

  it.each([
    ['the spans', () => receiver.received.filter((r) => r.path === '/v1/traces').map((r) => r.text)],
    ['the metrics', () => receiver.received.filter((r) => r.path === '/v1/metrics').map((r) => r.text)],
    ['the log lines', () => [output]],
    ['the audit entries', () => [auditEntries]],
  ])('finds no personal data in %s', (_what, texts) => {
    const captured = texts();
    expect(captured.join('').length).toBeGreaterThan(0);
    expect(captured.flatMap(leaksIn)).toEqual([]);
  });
});
