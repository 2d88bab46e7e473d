import { randomUUID } from 'node:crypto';

export const AUTHOR_ID = '100041234567890';
export const TAGGED_ID = '100049999';
export const RECIPIENT = '31612345678';
export const OTHER_RECIPIENT = '31687654321';

/** A Workplace post as the Graph API returns it, full of things that must not cross. */
export function workplacePost(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: '1234567890_987654321',
    message: 'Pieter Jansen opened the new warehouse in Utrecht today!',
    from: { id: AUTHOR_ID, name: 'Anna de Vries' },
    created_time: '2026-11-20T09:12:44+0000',
    permalink_url: 'https://acme.workplace.com/groups/1/permalink/987654321/',
    message_tags: [{ id: TAGGED_ID, name: 'Pieter Jansen', type: 'user', offset: 0, length: 13 }],
    place: { name: 'Warehouse Utrecht-Noord', location: { latitude: 52.09, longitude: 5.12 } },
    ...overrides,
  };
}

export function shareRequest(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    purpose: 'frontline-updates',
    sharedBy: { workplaceUserId: AUTHOR_ID },
    post: workplacePost(),
    recipients: [{ waId: RECIPIENT }],
    ...overrides,
  };
}

export function consent(type: 'whatsapp' | 'workplace', id: string, status: 'granted' | 'withdrawn' = 'granted', purpose = 'frontline-updates') {
  return { subject: { type, id }, purpose, status, evidence: { method: 'form', text: 'notice v3', capturedAt: new Date().toISOString() } };
}

export function idempotencyKey(): Record<string, string> {
  return { 'idempotency-key': randomUUID() };
}
