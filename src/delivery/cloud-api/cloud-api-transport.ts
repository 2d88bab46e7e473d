import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Agent as HttpAgent, type IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { CloudApiConfig } from '../../platform/config/config.js';
import type { SendPacer } from '../send-pacer.js';
import type { WhatsAppMessageRequest } from '../whatsapp-message.js';
import type { SendContext, SendFailure, SendOutcome, WhatsAppTransport } from '../whatsapp-transport.js';
import { failureOfErrorResponse, failureOfTransportError } from './cloud-api-errors.js';

/** WhatsApp keeps an uploaded media object for 30 days; sluice reuses one well within that. */
const UPLOAD_REUSE_MS = 60 * 60 * 1000;
const FILE_EXTENSIONS: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'video/mp4': 'mp4', 'video/3gpp': '3gp' };
/** The Cloud API answers in a few hundred bytes; anything far larger is not an answer to read. */
const MAX_ANSWER_BYTES = 1 << 20;

type Answer = { ok: true; body: unknown } | { ok: false; failure: SendFailure };

/**
 * The WhatsApp Business Platform (Cloud API) client: uploads a message's minimised media
 * (`POST /{phone-number-id}/media`, multipart) and sends the message by the returned media id
 * (`POST /{phone-number-id}/messages`), within the phone number's send rate. Every request has a
 * time limit; errors are mapped to retryable or final (cloud-api-errors.ts).
 */
export class CloudApiTransport implements WhatsAppTransport, OnApplicationShutdown {
  readonly reachesWhatsApp = true;
  private readonly logger = new Logger('CloudApi');
  /** One upload serves every recipient of a share: keyed by sluice's media object id. */
  private readonly uploads = new Map<string, { mediaId: Promise<Answer>; at: number }>();
  private readonly base: URL;
  /** Kept-alive connections: node:http rather than fetch, whose per-request cost would cap the send rate. */
  private readonly agent: HttpAgent;

  constructor(
    private readonly api: CloudApiConfig,
    readonly pacer: SendPacer,
  ) {
    this.base = new URL(`${api.apiBase}/${api.apiVersion}/${api.phoneNumberId}/`);
    const agentOptions = { keepAlive: true, maxSockets: 256 };
    this.agent = this.base.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
  }

  onApplicationShutdown(): void {
    this.agent.destroy();
  }

  async send(request: WhatsAppMessageRequest, context: SendContext): Promise<SendOutcome> {
    let body: WhatsAppMessageRequest = request;
    if (request.type === 'image' || request.type === 'video') {
      if (!context.media) return { ok: false, failure: { code: 'delivery.media_missing', retryable: false, delivered: 'no' } };
      const uploaded = await this.upload(context.media);
      if (!uploaded.ok) return uploaded;
      const mediaId = (uploaded.body as { id: string }).id;
      body = request.type === 'image' ? { ...request, image: { ...request.image, id: mediaId } } : { ...request, video: { ...request.video, id: mediaId } };
    }
    let withheld: string | undefined;
    const lastCheck = async () => (withheld = await context.withholdReason?.()) === undefined;
    if (!(await this.pacer.waitForTurn(context.slot, lastCheck))) {
      if (withheld !== undefined) return { ok: false, withheld };
      return { ok: false, failure: { code: 'delivery.send_slot_lost', retryable: true, delivered: 'no' } };
    }
    // WhatsApp echoes biz_opaque_callback_data in the message's status webhooks: it ties a status
    // to its outbox row even when the send response was lost.
    const answer = await this.call('messages', 'application/json', Buffer.from(JSON.stringify({ ...body, biz_opaque_callback_data: context.outboxId })));
    if (!answer.ok) return answer;
    const messageId = (answer.body as { messages?: { id?: unknown }[] } | null)?.messages?.[0]?.id;
    if (typeof messageId !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(messageId)) {
      // Accepted (2xx) but unreadable: WhatsApp may well be sending it.
      return { ok: false, failure: { code: 'transport.unexpected_response', retryable: true, delivered: 'unknown' } };
    }
    return { ok: true, messageId };
  }

  private upload(media: NonNullable<SendContext['media']>): Promise<Answer> {
    const now = Date.now();
    for (const [key, entry] of this.uploads) if (now - entry.at > UPLOAD_REUSE_MS) this.uploads.delete(key);
    const earlier = this.uploads.get(media.objectId);
    if (earlier) return earlier.mediaId;

    const { contentType, body } = multipart(
      [
        ['messaging_product', 'whatsapp'],
        ['type', media.mimeType],
      ],
      { field: 'file', filename: `${media.objectId}.${FILE_EXTENSIONS[media.mimeType] ?? 'bin'}`, mimeType: media.mimeType, bytes: media.bytes },
    );
    const mediaId = this.call('media', contentType, body).then((answer): Answer => {
      if (answer.ok && typeof (answer.body as { id?: unknown } | null)?.id !== 'string') {
        return { ok: false, failure: { code: 'transport.unexpected_response', retryable: true, delivered: 'no' } };
      }
      // Whatever happened to the upload, the message itself was not sent.
      return answer.ok ? answer : { ok: false, failure: { ...answer.failure, delivered: 'no' } };
    });
    this.uploads.set(media.objectId, { mediaId, at: now });
    void mediaId.then((answer) => {
      if (!answer.ok) this.uploads.delete(media.objectId);
    });
    return mediaId;
  }

  /** One POST to the phone number's endpoint; the time limit covers the whole exchange, answer included. */
  private call(endpoint: 'messages' | 'media', contentType: string, body: Buffer): Promise<Answer> {
    const url = new URL(endpoint, this.base);
    return new Promise<Answer>((resolve) => {
      const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
        method: 'POST',
        agent: this.agent,
        headers: { authorization: `Bearer ${this.api.accessToken}`, 'content-type': contentType, 'content-length': body.length },
      });
      const timer = setTimeout(() => request.destroy(Object.assign(new Error('the Cloud API did not answer in time'), { name: 'TimeoutError' })), this.api.timeoutMs);
      const settle = (answer: Answer) => {
        clearTimeout(timer);
        resolve(answer);
      };
      const noAnswer = (error: unknown) => {
        const failure = failureOfTransportError(error);
        this.logger.warn(`${endpoint} request got no answer: ${failure.code}`);
        settle({ ok: false, failure });
      };
      request.on('error', noAnswer);
      request.on('response', (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) request.destroy(new Error('the answer is too large'));
          else chunks.push(chunk);
        });
        response.on('error', noAnswer);
        response.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            parsed = undefined;
          }
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) return settle({ ok: true, body: parsed });
          const failure = failureOfErrorResponse(status, parsed);
          const subcode = failure.subcode !== undefined ? `, subcode ${failure.subcode}` : '';
          this.logger.warn(`${endpoint} request refused: HTTP ${status}, ${failure.code}${subcode}${failure.fbtraceId ? `, fbtrace_id ${failure.fbtraceId}` : ''}`);
          settle({ ok: false, failure });
        });
      });
      request.end(body);
    });
  }
}

/** A multipart/form-data body (RFC 7578): the fields, then the file. */
function multipart(fields: [name: string, value: string][], file: { field: string; filename: string; mimeType: string; bytes: Buffer }): { contentType: string; body: Buffer } {
  const boundary = `sluice-${randomBytes(16).toString('hex')}`;
  const parts = fields.map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`);
  const fileHead = `--${boundary}\r\nContent-Disposition: form-data; name="${file.field}"; filename="${file.filename}"\r\nContent-Type: ${file.mimeType}\r\n\r\n`;
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    body: Buffer.concat([Buffer.from(parts.join('') + fileHead, 'utf8'), file.bytes, Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8')]),
  };
}
