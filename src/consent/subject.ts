export const SUBJECT_TYPES = ['whatsapp', 'workplace'] as const;
export type SubjectType = (typeof SUBJECT_TYPES)[number];

export interface SubjectRef {
  type: SubjectType;
  id: string;
}

/** WhatsApp ids are phone numbers in international format without "+"; Workplace ids are numeric. */
export const SUBJECT_ID_PATTERNS: Record<SubjectType, RegExp> = {
  whatsapp: /^[1-9][0-9]{6,14}$/,
  workplace: /^[0-9]{1,30}$/,
};

export const PURPOSE_PATTERN = /^[a-z0-9][a-z0-9-]{0,99}$/;

export function isSubjectType(value: string): value is SubjectType {
  return (SUBJECT_TYPES as readonly string[]).includes(value);
}
