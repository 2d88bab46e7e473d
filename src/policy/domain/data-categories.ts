/**
 * Data categories a policy may name: keys of the fideslang taxonomy (the subset that applies to
 * content crossing from Workplace to WhatsApp; the full version-pinned copy is issue "policy
 * language"), or organisation extensions `org.<organisation>.<category>`.
 */
export const FIDESLANG_USER_CATEGORIES: ReadonlySet<string> = new Set([
  'user',
  'user.name',
  'user.name.first',
  'user.name.last',
  'user.contact',
  'user.contact.email',
  'user.contact.phone_number',
  'user.contact.address',
  'user.content',
  'user.content.public',
  'user.content.private',
  'user.content.self_image',
  'user.location',
  'user.location.precise',
  'user.location.imprecise',
  'user.unique_id',
  'user.unique_id.pseudonymous',
  'user.device',
  'user.device.ip_address',
  'user.financial',
  'user.financial.bank_account',
  'user.financial.credit_card',
  'user.government_id',
  'user.government_id.national_identification_number',
  'user.authorization.credentials',
]);

const ORGANISATION_EXTENSION = /^org\.[a-z0-9_]+(\.[a-z0-9_]+)+$/;

export function isKnownCategory(key: string): boolean {
  return FIDESLANG_USER_CATEGORIES.has(key) || ORGANISATION_EXTENSION.test(key);
}
