import type { SendPacer, SendSlot } from './send-pacer.js';
import type { WhatsAppMessageRequest } from './whatsapp-message.js';

export interface SendContext {
  /** The outbox row this send is for; lets a transport recognise its own retries and WhatsApp echo it back in status webhooks. */
  outboxId: string;
  /** The minimised media the request's image or video id names, to upload before sending. */
  media?: { objectId: string; bytes: Buffer; mimeType: string };
  /** The moment reserved for this message in the phone number's send rate (transports that reach WhatsApp). */
  slot?: SendSlot;
  /**
   * Asked once more right before the message's request goes out, after its media upload and at
   * its send slot (a transport that reaches WhatsApp may wait seconds for those): a reason code
   * (consent withdrawn meanwhile) withholds the message; undefined lets it go.
   */
  withholdReason?: () => Promise<string | undefined>;
}

/**
 * Why an attempt did not get a message id. `delivered` says what sluice can know about the copy:
 * `no` when WhatsApp answered with an error (or was never reached), `unknown` when the request may
 * have been processed without sluice hearing back (timeout, connection lost mid-request).
 */
export interface SendFailure {
  /** Stable code: `whatsapp.<error code>`, `http.<status>` or `transport.<what>`. */
  code: string;
  retryable: boolean;
  delivered: 'no' | 'unknown';
  /** Graph API error subcode, when WhatsApp gave one (deprecated by Meta since v16, still sent by some errors). */
  subcode?: number;
  /** Graph API trace id of the failed request, for Meta support; not personal data. */
  fbtraceId?: string;
  /** WhatsApp refused the business account, not this message (an expired token, a blocked account): the attempt does not count. */
  accountProblem?: true;
}

export type SendOutcome =
  | { ok: true; messageId: string }
  | { ok: false; failure: SendFailure }
  /** Not sent: `withholdReason` gave this reason at the last moment. */
  | { ok: false; withheld: string };

/** The port every WhatsApp transport implements: the local sandbox and the Cloud API client. */
export interface WhatsAppTransport {
  /**
   * True when messages really go to WhatsApp: they then use the phone number's send rate and
   * obey the 24-hour customer service window. The sandbox only records them.
   */
  readonly reachesWhatsApp: boolean;
  /** The phone number's send rate, kept by a transport that reaches WhatsApp: workers reserve a batch's slots from it. */
  readonly pacer?: SendPacer;
  send(request: WhatsAppMessageRequest, context: SendContext): Promise<SendOutcome>;
}

export const WHATSAPP_TRANSPORT = Symbol('WHATSAPP_TRANSPORT');
