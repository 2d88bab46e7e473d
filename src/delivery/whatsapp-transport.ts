import type { WhatsAppMessageRequest } from './whatsapp-message.js';

export interface SendContext {
  /** The outbox row this send is for; lets a transport recognise its own retries. */
  outboxId: string;
  /** The minimised media the request's image or video id names, to upload before sending. */
  media?: { bytes: Buffer; mimeType: string };
}

/** The port every WhatsApp transport implements (the local sandbox now, the Cloud API client later). */
export interface WhatsAppTransport {
  send(request: WhatsAppMessageRequest, context: SendContext): Promise<{ messageId: string }>;
}

export const WHATSAPP_TRANSPORT = Symbol('WHATSAPP_TRANSPORT');
