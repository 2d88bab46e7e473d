import { type Counter, metrics } from '@opentelemetry/api';

export const METER_NAME = 'sluice';

/** What a share decision reports, as far as metrics read it (structurally the policy's ShareDecision). */
export interface DecisionSummary {
  status: string;
  policy: { name: string } | null;
  reasons: string[];
  recipients: { reasons: string[] }[];
  crossing: { redactions: { recogniser: string; count: number }[] };
}

/** One recorded end of a delivery attempt or message, as the delivery worker audits it. */
export interface DeliveryOutcome {
  kind: 'message.sent' | 'message.failed' | 'message.cancelled';
  details: Record<string, unknown>;
}

interface Instruments {
  decisions: Counter;
  reasons: Counter;
  recogniserHits: Counter;
  deliveryOutcomes: Counter;
}

let instruments: Instruments | undefined;

/**
 * Created on first use, not at import: the meter provider is registered by tracing.ts before the
 * application is imported, and a meter taken earlier would stay a no-op.
 */
function meters(): Instruments {
  if (instruments) return instruments;
  const meter = metrics.getMeter(METER_NAME);
  instruments = {
    decisions: meter.createCounter('sluice.share.decisions', { description: 'Share decisions by status and policy', unit: '{share}' }),
    reasons: meter.createCounter('sluice.share.decision.reasons', {
      description: 'Reason codes of share decisions, for the whole share or for one recipient',
      unit: '{reason}',
    }),
    recogniserHits: meter.createCounter('sluice.policy.recogniser.hits', {
      description: 'Values replaced in free text by the policy recognisers, by recogniser',
      unit: '{value}',
    }),
    deliveryOutcomes: meter.createCounter('sluice.delivery.outcomes', {
      description: 'Recorded delivery outcomes by code: the worker\'s (sent, retry, failed, cancelled) and those status webhooks report (delivered, read, failed)',
      unit: '{message}',
    }),
  };
  return instruments;
}

/** Counts a decision by what it already reports: status, reason codes and recogniser counts, never values. */
export function countShareDecision(decision: DecisionSummary): void {
  const { decisions, reasons, recogniserHits } = meters();
  decisions.add(1, { 'sluice.decision.status': decision.status, 'sluice.policy.name': decision.policy?.name ?? 'none' });
  for (const code of decision.reasons) reasons.add(1, { 'sluice.reason.code': code, 'sluice.reason.scope': 'share' });
  for (const recipient of decision.recipients) {
    for (const code of recipient.reasons) reasons.add(1, { 'sluice.reason.code': code, 'sluice.reason.scope': 'recipient' });
  }
  for (const { recogniser, count } of decision.crossing.redactions) recogniserHits.add(count, { 'sluice.recogniser.type': recogniser });
}

export function countDeliveryOutcomes(outcomes: DeliveryOutcome[]): void {
  const { deliveryOutcomes } = meters();
  for (const { kind, details } of outcomes) {
    const outcome = kind === 'message.sent' ? 'sent' : kind === 'message.cancelled' ? 'cancelled' : details.final === true ? 'failed' : 'retry';
    const code = kind === 'message.sent' ? 'ok' : String((kind === 'message.cancelled' ? details.reason : details.error) ?? 'unknown');
    deliveryOutcomes.add(1, { 'sluice.delivery.outcome': outcome, 'sluice.delivery.code': code, 'sluice.delivery.source': 'worker' });
  }
}

/** Counts what WhatsApp's status webhooks reported and sluice applied: delivered, read, or failed with its code. */
export function countReportedStatuses(statuses: { status: 'sent' | 'delivered' | 'read' | 'failed'; error?: string; final?: false }[]): void {
  const { deliveryOutcomes } = meters();
  for (const { status, error, final } of statuses) {
    // 'sent' confirms what the worker already counted when WhatsApp answered the send.
    if (status === 'sent') continue;
    // A copy that failed and is sent again counts as a retry, as the worker counts one.
    const outcome = final === false ? 'retry' : status;
    deliveryOutcomes.add(1, { 'sluice.delivery.outcome': outcome, 'sluice.delivery.code': error ?? 'ok', 'sluice.delivery.source': 'status_webhook' });
  }
}
