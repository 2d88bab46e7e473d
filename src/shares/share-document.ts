export type DeliveryState = 'queued' | 'sent' | 'delivered' | 'read' | 'failed' | 'cancelled';
export type ShareStatus = 'accepted' | 'partially_accepted' | 'denied';

/** The decision as the share API returns it (contract: Share API). */
export interface ShareDocument {
  id: string;
  status: ShareStatus;
  policy: { name: string | null; bundle: string };
  reasons: string[];
  recipients: {
    waId: string;
    decision: 'allowed' | 'denied';
    reasons: string[];
    delivery?: DeliveryState | null;
    /** Why a failed delivery failed: a stable code such as whatsapp.131026 or delivery.outside_service_window. */
    deliveryError?: string;
  }[];
  crossing: {
    fields: { path: string; category: string; transform: string; subject?: string }[];
    dropped: { path: string; reason: string }[];
    redactions: { path: string; recogniser: string; count: number }[];
  };
  /** The share.decided entry; its index is null only between the decision and its sequencing. */
  audit: { entry: string; index: number | null };
  createdAt: string;
}
