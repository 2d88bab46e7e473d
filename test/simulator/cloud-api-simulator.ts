/**
 * A WhatsApp Cloud API simulator on loopback: the real paths, request and response bodies, Graph
 * API error objects and signed webhook deliveries, strict about the shape of every request (an
 * unknown key is refused as the real API refuses it), with the 24-hour customer service window
 * enforced and faults to inject: error bursts (429, 5xx, any error code), hangs, dropped
 * connections, slow answers, and answers held back until released. Plain node:http, no Nest: the
 * Cloud API client is tested against it over real HTTP, and the benchmark measures against it.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

export interface TemplateSpec {
  name: string;
  language: string;
  /** How many body parameters ({{1}}, {{2}}, ...) the approved template has. */
  parameters: number;
}

export interface SimulatorOptions {
  phoneNumberId?: string;
  accessToken?: string;
  appSecret?: string;
  verifyToken?: string;
  apiVersion?: string;
  templates?: TemplateSpec[];
  /** Status webhooks sent, in order, for every accepted message (none by default). */
  statuses?: ('sent' | 'delivered' | 'read')[];
  /** How often an undelivered webhook is tried again (Meta keeps trying for days; the simulator for seconds). */
  webhookRetries?: number;
}

export type Endpoint = 'messages' | 'media';

export type Fault =
  /** Answer with this status and a Graph error (`code`), or with `rawBody` as is (a proxy's page). */
  | { kind: 'error'; httpStatus: number; code?: number; message?: string; rawBody?: string }
  /** Never answer; with `accept` the message is taken (and sent on) first. */
  | { kind: 'hang'; accept?: boolean }
  /** Close the connection without an answer; with `accept` the message is taken first. */
  | { kind: 'drop'; accept?: boolean }
  /** Answer normally, `ms` late. */
  | { kind: 'delay'; ms: number };

export interface ReceivedMessage {
  wamid: string;
  to: string;
  type: string;
  /** The request body exactly as received. */
  body: Record<string, unknown>;
  /** biz_opaque_callback_data: sluice's outbox id. */
  outboxId: string | undefined;
  /** When the request arrived (performance.now(), ms). */
  receivedAt: number;
}

export interface RequestRecord {
  endpoint: Endpoint | 'unknown';
  status: number;
  /** The Graph error code answered, if any. */
  errorCode?: number;
  receivedAt: number;
}

type Answer = { status: number; body: unknown };

/** A business-scoped user id for an account: a country code and digits, the same for the same account. */
export function simulatedUserId(account: string): string {
  return `NL.${BigInt(`0x${createHash('sha256').update(account).digest('hex').slice(0, 15)}`)}`;
}

const DEFAULT_TEMPLATES: TemplateSpec[] = [{ name: 'frontline_update', language: 'en', parameters: 1 }];
const MEDIA_LIMITS: Record<string, number> = { 'image/jpeg': 5 << 20, 'image/png': 5 << 20, 'video/mp4': 16 << 20, 'video/3gpp': 16 << 20 };
const MAX_REQUEST_BYTES = 20 << 20;
const WINDOW_MS = 24 * 60 * 60 * 1000;

export class CloudApiSimulator {
  readonly phoneNumberId: string;
  readonly accessToken: string;
  readonly appSecret: string;
  readonly verifyToken: string;
  readonly apiVersion: string;
  /** Where webhooks go (sluice's /v1/webhooks/whatsapp); read at every try, so a restarted sluice on a new port is found. */
  webhookUrl: string | undefined;
  /** Every message accepted, in arrival order. */
  readonly messages: ReceivedMessage[] = [];
  /** Every request answered (or dropped, or hung), in arrival order. */
  readonly requests: RequestRecord[] = [];
  /** The body of every webhook delivered, as sent. */
  readonly webhooksSent: string[] = [];
  /** Uploaded media by media id. */
  readonly media = new Map<string, { bytes: Buffer; mimeType: string }>();

  /** Status webhooks sent, in order, for every message accepted from now on. */
  autoStatuses: ('sent' | 'delivered' | 'read')[];

  private readonly templates: TemplateSpec[];
  private readonly webhookRetries: number;
  private readonly faults: { fault: Fault; endpoint?: Endpoint; remaining: number }[] = [];
  private readonly lastInbound = new Map<string, number>();
  /** Accounts WhatsApp keeps under another form of their number (see registerAccount). */
  private readonly accountIds = new Map<string, string>();
  /** Accounts whose number WhatsApp leaves out of what they write (see withholdNumber). */
  private readonly numbersWithheld = new Set<string>();
  /** Accounts whose user id WhatsApp has replaced (see changeUserId). */
  private readonly userIdsReplaced = new Map<string, string>();
  private readonly sockets = new Set<Socket>();
  private readonly heldAnswers: (() => void)[] = [];
  private holding = false;
  private closed = false;

  private constructor(
    private readonly server: Server,
    readonly baseUrl: string,
    options: SimulatorOptions,
  ) {
    this.phoneNumberId = options.phoneNumberId ?? '106540352242922';
    this.accessToken = options.accessToken ?? `EAAsimulated${randomBytes(24).toString('hex')}`;
    this.appSecret = options.appSecret ?? randomBytes(16).toString('hex');
    this.verifyToken = options.verifyToken ?? `verify-${randomBytes(8).toString('hex')}`;
    this.apiVersion = options.apiVersion ?? 'v23.0';
    this.templates = options.templates ?? DEFAULT_TEMPLATES;
    this.autoStatuses = options.statuses ?? [];
    this.webhookRetries = options.webhookRetries ?? 8;
  }

  static async start(options: SimulatorOptions = {}): Promise<CloudApiSimulator> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const simulator = new CloudApiSimulator(server, `http://127.0.0.1:${port}`, options);
    server.on('connection', (socket) => {
      simulator.sockets.add(socket);
      socket.on('close', () => simulator.sockets.delete(socket));
    });
    server.on('request', (request, response) => {
      simulator.handle(request, response).catch(() => response.destroy());
    });
    return simulator;
  }

  /** The environment sluice needs to send through this simulator. */
  sluiceEnv(): Record<string, string> {
    return {
      WHATSAPP_TRANSPORT: 'cloud-api',
      WHATSAPP_API_BASE: this.baseUrl,
      WHATSAPP_API_VERSION: this.apiVersion,
      WHATSAPP_PHONE_NUMBER_ID: this.phoneNumberId,
      WHATSAPP_ACCESS_TOKEN: this.accessToken,
      WHATSAPP_APP_SECRET: this.appSecret,
      WHATSAPP_VERIFY_TOKEN: this.verifyToken,
    };
  }

  /** The next `times` requests (to `endpoint`, or to any) meet the fault. */
  inject(fault: Fault, options: { times?: number; endpoint?: Endpoint } = {}): void {
    this.faults.push({ fault, remaining: options.times ?? 1, ...(options.endpoint ? { endpoint: options.endpoint } : {}) });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** From now on, accepted messages get their answer only at release(). */
  hold(): void {
    this.holding = true;
  }

  /** Answers every held message and stops holding. */
  release(): void {
    this.holding = false;
    for (const answer of this.heldAnswers.splice(0)) answer();
  }

  /** How many accepted messages wait for their answer. */
  get held(): number {
    return this.heldAnswers.length;
  }

  /**
   * The contact's account is known to WhatsApp as `accountId`, an older form of `number` (a
   * Brazilian mobile without its ninth digit, say): send answers, status reports and the service
   * window use that id, and the contact's own messages come from it.
   */
  registerAccount(number: string, accountId: string): void {
    this.accountIds.set(number, accountId);
  }

  private accountOf(number: string): string {
    return this.accountIds.get(number) ?? number;
  }

  /** The account's business-scoped user id (BSUID), as WhatsApp sends it in every webhook since April 2026. */
  userIdOf(account: string): string {
    return this.userIdsReplaced.get(account) ?? simulatedUserId(account);
  }

  /**
   * The account takes a WhatsApp username and is no longer in the business's contact book: what
   * it writes names it by its user id only, without `from` or the contact's `wa_id`.
   */
  withholdNumber(account: string): void {
    this.numbersWithheld.add(account);
  }

  messagesTo(waId: string): ReceivedMessage[] {
    return this.messages.filter((m) => m.to === waId);
  }

  /**
   * The contact writes to the business: opens the 24-hour window from `sentAt` (default now) and,
   * when a webhookUrl is set, delivers the inbound message webhook, resolving once it is taken.
   */
  async receiveText(from: string, text: string, options: { sentAt?: Date; id?: string } = {}): Promise<string> {
    const sentAt = options.sentAt ?? new Date();
    const id = options.id ?? wamid(from);
    this.lastInbound.set(from, Math.max(this.lastInbound.get(from) ?? 0, sentAt.getTime()));
    if (this.webhookUrl === undefined) return id;
    const withheld = this.numbersWithheld.has(from);
    const userId = this.userIdOf(from);
    await this.deliverWebhook(
      this.notification({
        contacts: [{ profile: { name: 'Simulated Contact' }, ...(withheld ? {} : { wa_id: from }), user_id: userId }],
        messages: [{ ...(withheld ? {} : { from }), from_user_id: userId, id, timestamp: unixSeconds(sentAt), type: 'text', text: { body: text } }],
      }),
    );
    return id;
  }

  /**
   * The contact moves from one number to another: WhatsApp's system message, sent from the old
   * number (without a contacts array), with the new number and the user id that comes with it.
   * Resolves once sluice has taken it; returns the message id.
   */
  async changeNumber(from: string, to: string, options: { sentAt?: Date; id?: string; name?: string } = {}): Promise<string> {
    const id = options.id ?? wamid(from);
    const system = { body: `User ${options.name ?? 'Simulated Contact'} changed from ${from} to ${to}`, wa_id: to, type: 'user_changed_number', user_id: this.userIdOf(to), previous_user_id: this.userIdOf(from) };
    await this.deliverWebhook(this.notification({ messages: [{ from, id, timestamp: unixSeconds(options.sentAt ?? new Date()), type: 'system', system }] }));
    return id;
  }

  /**
   * WhatsApp gives the account a new user id: its system message names the old and the new one
   * (and the number only when the account shares it). Resolves once sluice has taken it.
   */
  async changeUserId(account: string): Promise<string> {
    const previous = this.userIdOf(account);
    const next = simulatedUserId(`${previous} replaced`);
    this.userIdsReplaced.set(account, next);
    const withheld = this.numbersWithheld.has(account);
    const system = { body: 'User Simulated Contact changed their user id', type: 'user_changed_user_id', user_id: next, previous_user_id: previous };
    await this.deliverWebhook(this.notification({ messages: [{ ...(withheld ? {} : { from: account }), id: wamid(account), timestamp: unixSeconds(new Date()), type: 'system', system }] }));
    return next;
  }

  /** Delivers a status webhook about an accepted message. Resolves when sluice has taken it. */
  async sendStatus(message: ReceivedMessage, status: 'sent' | 'delivered' | 'read' | 'failed', options: { errorCode?: number; at?: Date } = {}): Promise<void> {
    await this.deliverWebhook(this.statusNotification(message, status, options));
  }

  statusNotification(message: ReceivedMessage, status: 'sent' | 'delivered' | 'read' | 'failed', options: { errorCode?: number; at?: Date } = {}): Record<string, unknown> {
    return this.notification({
      statuses: [
        {
          id: message.wamid,
          status,
          timestamp: unixSeconds(options.at ?? new Date()),
          recipient_id: this.accountOf(message.to),
          // A failed report on a message sent to a phone number leaves the user id out.
          ...(status !== 'failed' ? { recipient_user_id: this.userIdOf(this.accountOf(message.to)) } : {}),
          ...(message.outboxId !== undefined ? { biz_opaque_callback_data: message.outboxId } : {}),
          ...(status === 'failed'
            ? { errors: [{ code: options.errorCode ?? 131026, title: 'Message undeliverable', message: 'Message undeliverable', error_data: { details: 'Message Undeliverable.' } }] }
            : { conversation: { id: randomBytes(16).toString('hex'), origin: { type: 'utility' } }, pricing: { billable: true, pricing_model: 'PMP', category: 'utility' } }),
        },
      ],
    });
  }

  /** A webhook body as the Cloud API wraps it. */
  notification(value: Record<string, unknown>): Record<string, unknown> {
    return {
      object: 'whatsapp_business_account',
      entry: [
        {
          id: '102290129340398',
          changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '15550783881', phone_number_id: this.phoneNumberId }, ...value } }],
        },
      ],
    };
  }

  /** X-Hub-Signature-256 of a body under this app's secret. */
  signature(body: string | Buffer): string {
    return `sha256=${createHmac('sha256', this.appSecret).update(body).digest('hex')}`;
  }

  /** Signed POST to webhookUrl, tried again on failure as Meta does; resolves on the first 2xx. */
  async deliverWebhook(payload: Record<string, unknown>): Promise<void> {
    const body = JSON.stringify(payload);
    this.webhooksSent.push(body);
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new Error('simulator closed');
      const url = this.webhookUrl;
      if (url === undefined) throw new Error('the simulator has no webhookUrl');
      const outcome = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': this.signature(body) }, body }).then(
        (response) => response.arrayBuffer().then(() => response.status),
        () => 0,
      );
      if (outcome >= 200 && outcome < 300) return;
      if (attempt >= this.webhookRetries) throw new Error(`webhook not taken after ${attempt + 1} tries (last answer: ${outcome || 'no connection'})`);
      await sleep(100 * 2 ** attempt);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.release();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const receivedAt = performance.now();
    const path = /^\/(v\d+\.\d+)\/([^/]+)\/(messages|media)$/.exec(new URL(request.url ?? '/', 'http://simulator').pathname);
    const endpoint = path && path[1] === this.apiVersion && request.method === 'POST' ? (path[3] as Endpoint) : undefined;
    const record = (status: number, body: unknown) => {
      const code = (body as { error?: { code?: number } } | undefined)?.error?.code;
      this.requests.push({ endpoint: endpoint ?? 'unknown', status, receivedAt, ...(code !== undefined ? { errorCode: code } : {}) });
    };
    const answer = (status: number, body: unknown, raw?: string) => {
      record(status, body);
      if (response.destroyed) return;
      response.writeHead(status, { 'content-type': raw === undefined ? 'application/json' : 'text/html' });
      response.end(raw ?? JSON.stringify(body));
    };

    if (!endpoint) return answer(400, graphError(2500, `Unknown path components: ${request.url}`));
    if (path![2] !== this.phoneNumberId) {
      return answer(400, graphError(100, `Unsupported post request. Object with ID '${path![2]}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`, { subcode: 33 }));
    }
    if (request.headers.authorization !== `Bearer ${this.accessToken}`) {
      return answer(401, graphError(190, 'Invalid OAuth access token - Cannot parse access token', { type: 'OAuthException' }));
    }
    const raw = await readBody(request);
    if (raw === undefined) return answer(413, graphError(100, 'Request too large'));

    const fault = this.takeFault(endpoint);
    if (fault?.kind === 'error') return answer(fault.httpStatus, fault.rawBody === undefined ? graphError(fault.code ?? 131000, fault.message ?? 'Something went wrong') : undefined, fault.rawBody);
    if ((fault?.kind === 'hang' || fault?.kind === 'drop') && !fault.accept) return this.abandon(fault.kind, request, endpoint, receivedAt);

    const result = endpoint === 'messages' ? this.acceptMessage(raw, request.headers['content-type'], receivedAt) : await this.acceptUpload(raw, request.headers['content-type']);
    if (fault?.kind === 'hang' || fault?.kind === 'drop') return this.abandon(fault.kind, request, endpoint, receivedAt);
    if (fault?.kind === 'delay') await sleep(fault.ms);
    if (this.holding && endpoint === 'messages' && result.status === 200) {
      await new Promise<void>((resolve) => this.heldAnswers.push(resolve));
    }
    answer(result.status, result.body);
  }

  private abandon(kind: 'hang' | 'drop', request: IncomingMessage, endpoint: Endpoint, receivedAt: number): void {
    this.requests.push({ endpoint, status: 0, receivedAt });
    if (kind === 'drop') request.socket.destroy();
  }

  private takeFault(endpoint: Endpoint): Fault | undefined {
    const rule = this.faults.find((f) => f.remaining > 0 && (f.endpoint === undefined || f.endpoint === endpoint));
    if (!rule) return undefined;
    rule.remaining--;
    if (rule.remaining === 0) this.faults.splice(this.faults.indexOf(rule), 1);
    return rule.fault;
  }

  private acceptMessage(raw: Buffer, contentType: string | undefined, receivedAt: number): Answer {
    if (!contentType?.startsWith('application/json')) return invalid('the request body must be application/json');
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return invalid('the request body is not JSON');
    }
    const problem = messageShapeProblem(body);
    if (problem) return invalid(problem);
    const message = body as Record<string, unknown> & { to: string; type: string };
    if (message.type === 'template') {
      const template = message.template as { name: string; language: { code: string }; components?: { parameters: unknown[] }[] };
      const spec = this.templates.find((t) => t.name === template.name && t.language === template.language.code);
      if (!spec) return { status: 404, body: graphError(132001, 'Template name does not exist in the translation', { details: `template name (${template.name}) does not exist in ${template.language.code}` }) };
      const given = (template.components ?? []).reduce((n, c) => n + c.parameters.length, 0);
      if (given !== spec.parameters) return { status: 400, body: graphError(132000, 'Number of parameters does not match the expected number of params', { details: `body: number of localizable_params (${given}) does not match the expected number of params (${spec.parameters})` }) };
    } else {
      if (message.type === 'image' || message.type === 'video') {
        const mediaId = (message[message.type] as { id: string }).id;
        const uploaded = this.media.get(mediaId);
        if (!uploaded) return invalid(`${message.type}.id ${mediaId} is not a media id this phone number uploaded`);
        if (!uploaded.mimeType.startsWith(`${message.type}/`)) return { status: 400, body: graphError(131053, 'Media upload error', { details: `media ${mediaId} is ${uploaded.mimeType}, not an ${message.type}` }) };
      }
      const last = this.lastInbound.get(this.accountOf(message.to));
      if (last === undefined || Date.now() - last > WINDOW_MS) {
        return { status: 400, body: graphError(131047, 'Re-engagement message', { details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.' }) };
      }
    }
    const accepted: ReceivedMessage = {
      wamid: wamid(this.accountOf(message.to)),
      to: message.to,
      type: message.type,
      body: message,
      outboxId: typeof message.biz_opaque_callback_data === 'string' ? message.biz_opaque_callback_data : undefined,
      receivedAt,
    };
    this.messages.push(accepted);
    if (this.autoStatuses.length > 0) void this.reportStatuses(accepted);
    return {
      status: 200,
      body: { messaging_product: 'whatsapp', contacts: [{ input: message.to, wa_id: this.accountOf(message.to) }], messages: [{ id: accepted.wamid, message_status: 'accepted' }] },
    };
  }

  private async acceptUpload(raw: Buffer, contentType: string | undefined): Promise<Answer> {
    if (!contentType?.startsWith('multipart/form-data')) return invalid('media must be uploaded as multipart/form-data');
    let form: FormData;
    try {
      form = await new Response(raw, { headers: { 'content-type': contentType } }).formData();
    } catch {
      return invalid('the multipart body cannot be read');
    }
    const unknown = [...new Set(form.keys())].filter((k) => !['messaging_product', 'type', 'file'].includes(k));
    if (unknown.length > 0) return invalid(`Unexpected key "${unknown[0]}"`);
    if (form.get('messaging_product') !== 'whatsapp') return invalid('messaging_product must be whatsapp');
    const type = form.get('type');
    const file = form.get('file');
    if (typeof type !== 'string') return invalid('type (the media MIME type) is required');
    if (!(file instanceof Blob)) return invalid('file is required');
    const limit = MEDIA_LIMITS[type];
    if (limit === undefined) return { status: 400, body: graphError(131053, 'Media upload error', { details: `Param file must be a file with one of the following types: ${Object.keys(MEDIA_LIMITS).join(', ')}. Received file of type '${type}'.` }) };
    if (file.type !== type) return { status: 400, body: graphError(131053, 'Media upload error', { details: `the file part is ${file.type || 'untyped'}, type says ${type}` }) };
    if (file.size > limit) return { status: 400, body: graphError(131053, 'Media upload error', { details: `${type} is limited to ${limit} bytes` }) };
    const id = String(10n ** 15n + BigInt(`0x${randomBytes(6).toString('hex')}`));
    this.media.set(id, { bytes: Buffer.from(await file.arrayBuffer()), mimeType: type });
    return { status: 200, body: { id } };
  }

  private async reportStatuses(message: ReceivedMessage): Promise<void> {
    for (const status of this.autoStatuses) {
      if (this.closed || this.webhookUrl === undefined) return;
      try {
        await this.deliverWebhook(this.statusNotification(message, status));
      } catch {
        return;
      }
    }
  }
}

/**
 * What the real API refuses in a message request: a missing or wrong required field, or a key
 * it does not know (including a type object that does not match `type`).
 */
export function messageShapeProblem(body: unknown): string | undefined {
  if (!isObject(body)) return 'the request body must be a JSON object';
  const type = body.type;
  const known = ['messaging_product', 'recipient_type', 'to', 'type', 'biz_opaque_callback_data', 'context', String(type)];
  const unknown = Object.keys(body).find((k) => !known.includes(k));
  if (unknown !== undefined) return `Unexpected key "${unknown}" on param "messages"`;
  if (body.messaging_product !== 'whatsapp') return 'messaging_product must be "whatsapp"';
  if (body.recipient_type !== undefined && body.recipient_type !== 'individual') return 'recipient_type must be "individual"';
  if (typeof body.to !== 'string' || !/^\d{7,15}$/.test(body.to)) return 'to must be a phone number, digits only';
  if (body.biz_opaque_callback_data !== undefined && (typeof body.biz_opaque_callback_data !== 'string' || body.biz_opaque_callback_data.length > 512)) {
    return 'biz_opaque_callback_data must be a string of at most 512 characters';
  }
  const content = body[String(type)];
  switch (type) {
    case 'text':
      if (!isObject(content) || !onlyKeys(content, ['body', 'preview_url'])) return 'text must be an object with body and preview_url only';
      if (typeof content.body !== 'string' || content.body.length === 0 || content.body.length > 4096) return 'text.body must be 1 to 4096 characters';
      if (content.preview_url !== undefined && typeof content.preview_url !== 'boolean') return 'text.preview_url must be a boolean';
      return undefined;
    case 'image':
    case 'video':
      if (!isObject(content) || !onlyKeys(content, ['id', 'caption'])) return `${type} must be an object with id and caption only (the simulator takes uploaded media, not links)`;
      if (typeof content.id !== 'string' || content.id === '') return `${type}.id is required`;
      if (content.caption !== undefined && (typeof content.caption !== 'string' || content.caption.length > 1024)) return `${type}.caption must be at most 1024 characters`;
      return undefined;
    case 'template':
      return templateShapeProblem(content);
    default:
      return `(#131051) Unsupported message type: ${String(type)}`;
  }
}

function templateShapeProblem(template: unknown): string | undefined {
  if (!isObject(template) || !onlyKeys(template, ['name', 'language', 'components'])) return 'template must be an object with name, language and components only';
  if (typeof template.name !== 'string' || !/^[a-z0-9_]{1,512}$/.test(template.name)) return 'template.name is required';
  if (!isObject(template.language) || !onlyKeys(template.language, ['code', 'policy']) || typeof template.language.code !== 'string') return 'template.language.code is required';
  if (template.components === undefined) return undefined;
  if (!Array.isArray(template.components)) return 'template.components must be an array';
  for (const component of template.components) {
    if (!isObject(component) || !onlyKeys(component, ['type', 'parameters']) || component.type !== 'body' || !Array.isArray(component.parameters)) {
      return 'template.components must be body components with parameters';
    }
    for (const parameter of component.parameters) {
      if (!isObject(parameter) || !onlyKeys(parameter, ['type', 'text']) || parameter.type !== 'text' || typeof parameter.text !== 'string' || parameter.text === '') {
        return 'template parameters must be {type: "text", text: "..."}';
      }
      if (/[\n\t]| {5,}/.test(parameter.text)) return 'Param text cannot have new-line/tab characters or more than 4 consecutive spaces';
    }
  }
  return undefined;
}

function invalid(details: string): Answer {
  return { status: 400, body: graphError(100, 'Invalid parameter', { details }) };
}

function graphError(code: number, message: string, extra: { subcode?: number; details?: string; type?: string } = {}): { error: Record<string, unknown> } {
  return {
    error: {
      message: `(#${code}) ${message}`,
      type: extra.type ?? 'OAuthException',
      code,
      ...(extra.details !== undefined ? { error_data: { messaging_product: 'whatsapp', details: extra.details } } : {}),
      ...(extra.subcode !== undefined ? { error_subcode: extra.subcode } : {}),
      fbtrace_id: randomBytes(9).toString('base64url'),
    },
  };
}

function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_REQUEST_BYTES) chunks.push(chunk);
    });
    request.on('end', () => resolve(size > MAX_REQUEST_BYTES ? undefined : Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/**
 * A message id in WhatsApp's own form: base64 of a small record that starts with the contact's
 * number (wamid.HBgLMzE2... is "31 6..."), then random bytes. So the number can be read out of it.
 */
function wamid(waId: string): string {
  const number = Buffer.from(waId, 'latin1');
  return `wamid.${Buffer.concat([Buffer.from([0x1c, 0x18, number.length]), number, Buffer.from([0x15, 0x02, 0x00, 0x11, 0x18, 0x12]), randomBytes(18)]).toString('base64')}`;
}

function unixSeconds(at: Date): string {
  return String(Math.floor(at.getTime() / 1000));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function onlyKeys(value: Record<string, unknown>, keys: string[]): boolean {
  return Object.keys(value).every((k) => keys.includes(k));
}
