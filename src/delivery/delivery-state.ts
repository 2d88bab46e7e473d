import type { DeliveryState } from '../shares/share-document.js';

/** What can move a recipient's delivery state: WhatsApp's status reports, and sluice cancelling a queued message. */
export type DeliveryReport = 'sent' | 'delivered' | 'read' | 'failed' | 'cancelled';

/**
 * The states each report may move a recipient from. Reports arrive late, twice and out of order
 * (webhooks are retried, and a message whose first attempt's outcome was unknown can exist
 * twice at WhatsApp), so a state only ever moves forward: a read never goes back to sent, and a
 * report that says less than what is known changes nothing. `cancelled` and `failed` give way to
 * a later proof that the message did arrive.
 */
export const ADVANCES_FROM: Record<DeliveryReport, readonly DeliveryState[]> = {
  sent: ['queued', 'cancelled'],
  delivered: ['queued', 'cancelled', 'sent', 'failed'],
  read: ['queued', 'cancelled', 'sent', 'delivered', 'failed'],
  failed: ['queued', 'sent'],
  cancelled: ['queued'],
};
