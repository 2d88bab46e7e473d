/** A policy file as written (after schema validation), camelCase as in the YAML. */
export interface PolicyDocument {
  apiVersion: 'sluice.policy/v1';
  name: string;
  description?: string;
  purpose: string;
  lawfulBasis: LawfulBasis;
  source: 'workplace.post';
  destination: 'whatsapp';
  recipients: { consent: ConsentRule };
  subjects?: { author?: SubjectRule; mentioned?: SubjectRule };
  fields: FieldRule[];
  limits?: { recipientsPerShare?: number; messageLength?: number };
  delivery: { type: 'text'; template: string };
  audit?: { retention?: string };
}

export type LawfulBasis = 'consent' | 'contract' | 'legal-obligation' | 'vital-interests' | 'public-task' | 'legitimate-interests';

export interface ConsentRule {
  purpose: string;
}

export interface SubjectRule {
  consent: ConsentRule;
  whenMissing: 'drop' | 'redact' | 'deny';
}

export interface FieldRule {
  path: string;
  category: string;
  transform?: 'none';
  subject?: 'author';
}

/** A policy ready to evaluate: defaults filled in, the template parsed. */
export interface CompiledPolicy {
  name: string;
  purpose: string;
  lawfulBasis: LawfulBasis;
  source: string;
  destination: string;
  file: string;
  /** sha256 hex of the file's bytes. */
  fileHash: string;
  recipientConsent: ConsentRule;
  author?: SubjectRule;
  mentioned?: SubjectRule;
  fields: CompiledField[];
  limits: { recipientsPerShare: number; messageLength: number };
  template: TemplateLine[];
  retention?: string;
}

export interface CompiledField {
  path: string;
  segments: string[];
  category: string;
  transform: 'none';
  subject?: 'author';
}

/** A template line: literal text and {path} placeholders, left out unless every placeholder crossed. */
export type TemplateLine = ({ text: string } | { field: string })[];
