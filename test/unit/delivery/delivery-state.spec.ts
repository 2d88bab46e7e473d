import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { ADVANCES_FROM, type DeliveryReport } from '../../../src/delivery/delivery-state.js';
import type { DeliveryState } from '../../../src/shares/share-document.js';

/** What the guarded UPDATE in DeliveryRecords does: move only from the states the report may move. */
const advanceDelivery = (current: DeliveryState, report: DeliveryReport): DeliveryState | undefined => (ADVANCES_FROM[report].includes(current) ? report : undefined);

const apply = (reports: DeliveryReport[], from: DeliveryState = 'queued'): DeliveryState =>
  reports.reduce<DeliveryState>((state, report) => advanceDelivery(state, report) ?? state, from);

describe('delivery state', () => {
  it('follows WhatsApp forward: queued, sent, delivered, read', () => {
    expect(apply(['sent'])).toBe('sent');
    expect(apply(['sent', 'delivered'])).toBe('delivered');
    expect(apply(['sent', 'delivered', 'read'])).toBe('read');
  });

  it('ignores repeated and out-of-order reports: a read never goes back to sent', () => {
    expect(advanceDelivery('read', 'sent')).toBeUndefined();
    expect(advanceDelivery('read', 'delivered')).toBeUndefined();
    expect(advanceDelivery('delivered', 'delivered')).toBeUndefined();
    expect(apply(['read', 'delivered', 'sent'])).toBe('read');
  });

  it('lets a later proof of arrival override a failure or a cancellation, never the other way round', () => {
    expect(apply(['sent', 'failed', 'delivered'])).toBe('delivered');
    expect(apply(['sent', 'delivered', 'failed'])).toBe('delivered');
    expect(apply(['cancelled', 'sent'])).toBe('sent');
    expect(advanceDelivery('sent', 'cancelled')).toBeUndefined();
  });

  it('ends at read whenever a read was reported, in any order and with any repeats', () => {
    const report = fc.constantFrom<DeliveryReport>('sent', 'delivered', 'read', 'failed');
    fc.assert(
      fc.property(fc.array(report), fc.array(report), (before, after) => {
        expect(apply([...before, 'read', ...after])).toBe('read');
      }),
    );
  });
});
