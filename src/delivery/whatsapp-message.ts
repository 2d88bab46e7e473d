/** A Cloud API `POST /{phone-number-id}/messages` request body, as sluice sends it. */
export interface WhatsAppMessageRequest {
  messaging_product: 'whatsapp';
  recipient_type: 'individual';
  to: string;
  type: 'text';
  text: { preview_url: boolean; body: string };
}

export function textMessage(to: string, body: string): WhatsAppMessageRequest {
  // preview_url off: a link preview would make WhatsApp fetch the URL, a crossing of its own.
  return { messaging_product: 'whatsapp', recipient_type: 'individual', to, type: 'text', text: { preview_url: false, body } };
}
