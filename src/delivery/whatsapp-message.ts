/** A Cloud API `POST /{phone-number-id}/messages` request body, as sluice sends it. */
export type WhatsAppMessageRequest = {
  messaging_product: 'whatsapp';
  recipient_type: 'individual';
  to: string;
} & (
  | { type: 'text'; text: { preview_url: boolean; body: string } }
  /** `id` names a sluice media object until the transport has uploaded it (issue: real delivery). */
  | { type: 'image'; image: { id: string; caption?: string } }
  | { type: 'video'; video: { id: string; caption?: string } }
  | {
      type: 'template';
      template: { name: string; language: { code: string }; components: { type: 'body'; parameters: { type: 'text'; text: string }[] }[] };
    }
);

const envelope = (to: string) => ({ messaging_product: 'whatsapp' as const, recipient_type: 'individual' as const, to });

export function textMessage(to: string, body: string): WhatsAppMessageRequest {
  // preview_url off: a link preview would make WhatsApp fetch the URL, a crossing of its own.
  return { ...envelope(to), type: 'text', text: { preview_url: false, body } };
}

export function mediaMessage(to: string, kind: 'image' | 'video', mediaId: string, caption: string): WhatsAppMessageRequest {
  const media = caption === '' ? { id: mediaId } : { id: mediaId, caption };
  return kind === 'image' ? { ...envelope(to), type: 'image', image: media } : { ...envelope(to), type: 'video', video: media };
}

export function templateMessage(to: string, name: string, language: string, parameters: string[]): WhatsAppMessageRequest {
  return {
    ...envelope(to),
    type: 'template',
    template: { name, language: { code: language }, components: [{ type: 'body', parameters: parameters.map((text) => ({ type: 'text', text })) }] },
  };
}

/** The media object a message carries (its photo or video), if any. */
export function mediaObjectOf(payload: WhatsAppMessageRequest): string | undefined {
  return payload.type === 'image' ? payload.image.id : payload.type === 'video' ? payload.video.id : undefined;
}

/** What an erasure leaves of a request body that named the person erased: a message's, or the sandbox's copy of it. */
export const ERASED_REQUEST_TEXT = JSON.stringify({ erased: true });

/** Whether an erasure has cleared this request body: it can no longer be sent. */
export function isErasedRequest(payload: WhatsAppMessageRequest | { erased?: unknown }): boolean {
  return (payload as { erased?: unknown }).erased === true;
}
