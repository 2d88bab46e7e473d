export const SUBJECT_TYPES = ['whatsapp', 'workplace'] as const;
export type SubjectType = (typeof SUBJECT_TYPES)[number];

export interface SubjectRef {
  type: SubjectType;
  id: string;
}

/**
 * WhatsApp ids are phone numbers in international format without "+"; Workplace ids are numeric,
 * as the Graph API writes them: without leading zeros, which would make another string (another
 * consent, an erasure that misses the person) of the same id.
 */
export const SUBJECT_ID_PATTERNS: Record<SubjectType, RegExp> = {
  whatsapp: /^[1-9][0-9]{6,14}$/,
  workplace: /^[1-9][0-9]{0,29}$/,
};

/**
 * One person, one WhatsApp id. WhatsApp keeps some accounts under an older form of their number
 * and names them so in webhooks (`from`, `recipient_id`) and send answers (`wa_id`): Brazilian
 * mobiles registered before the ninth digit (55, a two-digit area code, 8 digits from 6 to 9)
 * and Mexican mobiles with the "1" that once followed 52. Either form is read as today's number,
 * so that a STOP, a status report, a consent or an erasure under either reaches the same person.
 */
export function canonicalWhatsAppId(id: string): string {
  const brazilian = /^55([1-9]{2})([6-9][0-9]{7})$/.exec(id);
  if (brazilian) return `55${brazilian[1]}9${brazilian[2]}`;
  const mexican = /^521([0-9]{10})$/.exec(id);
  if (mexican) return `52${mexican[1]}`;
  return id;
}

/**
 * Every form under which a message to or from the contact `id` (canonical) may name them. An
 * Argentinian mobile is 54, 9, then ten digits (an area code from 1 to 3 and the number), and
 * WhatsApp names it so; integrations often give it without the 9, as it is dialled at home. The
 * two forms are one number (Argentina gives a number to a mobile or a landline, never both), yet
 * neither can be read as the other the way old Brazilian and Mexican forms are: an id already
 * stored is found by an HMAC of its digits, and a landline's account is named without the 9. So
 * an opt-out, a status report, a subject report and an erasure try both.
 */
export function whatsAppIdForms(id: string): string[] {
  const argentinian = /^54(9?)([1-3][0-9]{9})$/.exec(id);
  if (!argentinian) return [id];
  return [id, argentinian[1] ? `54${argentinian[2]}` : `549${argentinian[2]}`];
}

/** The subject under each form of their id: two for an Argentinian mobile (whatsAppIdForms), else one. */
export function subjectForms(subject: SubjectRef): SubjectRef[] {
  return subject.type === 'whatsapp' ? whatsAppIdForms(subject.id).map((id) => ({ ...subject, id })) : [subject];
}

export const PURPOSE_PATTERN = /^[a-z0-9][a-z0-9-]{0,99}$/;

export function isSubjectType(value: string): value is SubjectType {
  return (SUBJECT_TYPES as readonly string[]).includes(value);
}
