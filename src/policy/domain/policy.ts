import type { RecogniserId } from './recognisers/index.js';

/** A policy file as written (after schema validation), camelCase as in the YAML. */
export interface PolicyDocument {
  apiVersion: 'sluice.policy/v1';
  name: string;
  description?: string;
  purpose: string;
  lawfulBasis: LawfulBasis;
  source: 'workplace.post';
  destination: 'whatsapp';
  recipients: { consent?: ConsentRule };
  subjects?: { author?: SubjectRule; mentioned?: SubjectRule };
  fields: FieldRule[];
  freeText?: FreeTextRule;
  media?: MediaRule;
  limits?: { recipientsPerShare?: number; messageLength?: number; mediaBytes?: number };
  delivery: DeliveryRule;
  audit?: { retention?: string };
}

export type LawfulBasis = 'consent' | 'contract' | 'legal-obligation' | 'vital-interests' | 'public-task' | 'legitimate-interests';

export interface ConsentRule {
  purpose: string;
}

export type WhenConsentMissing = 'drop' | 'redact' | 'deny';

export interface SubjectRule {
  consent: ConsentRule;
  whenMissing: WhenConsentMissing;
}

export type TransformSpec =
  | 'none'
  | 'drop'
  | 'hash'
  | 'redact-pii'
  | { mask: { keepLast?: number; keepFirst?: number } }
  | { truncate: { length: number } }
  | { generalise: { to: 'day' | 'month' } };

export interface FieldRule {
  path: string;
  category: string;
  transform?: TransformSpec;
  subject?: 'author';
  /** Why a dropped field is listed, for reviewers. */
  reason?: string;
}

export type FreeTextAction = 'mask' | 'redact' | 'deny';

export interface FreeTextRule {
  recognisers: RecogniserId[];
  action: FreeTextAction;
  /** A different action for some recognisers, e.g. deny the share on a BSN. */
  actions?: Partial<Record<RecogniserId, FreeTextAction>>;
}

export type PhotoType = 'jpeg' | 'png' | 'heic' | 'webp';
export type VideoType = 'mp4' | 'quicktime';

export interface MediaRule {
  photos?: { allow: boolean; category?: string; types?: PhotoType[]; maxPixels?: number; maxDimension?: number };
  videos?: { allow: boolean; category?: string; types?: VideoType[] };
}

export interface TemplateRule {
  name: string;
  language: string;
  parameters: { text: string; fallback: string }[];
}

export type DeliveryRule =
  | { type: 'text'; template: string; outsideWindow?: TemplateRule }
  | ({ type: 'template' } & TemplateRule);

/** A policy ready to evaluate: defaults filled in, templates parsed. */
export interface CompiledPolicy {
  name: string;
  description?: string;
  purpose: string;
  lawfulBasis: LawfulBasis;
  source: string;
  destination: string;
  file: string;
  /** sha256 hex of the file's bytes. */
  fileHash: string;
  recipientConsent?: ConsentRule;
  author?: SubjectRule;
  mentioned?: SubjectRule;
  fields: CompiledField[];
  freeText: CompiledFreeText;
  media: CompiledMediaRules;
  limits: { recipientsPerShare: number; messageLength: number; mediaBytes: number };
  delivery: CompiledDelivery;
  retention?: string;
}

export type Transform =
  | { kind: 'none' }
  | { kind: 'drop' }
  | { kind: 'hash' }
  | { kind: 'redact-pii' }
  | { kind: 'mask'; keepFirst: number; keepLast: number }
  | { kind: 'truncate'; length: number }
  | { kind: 'generalise'; to: 'day' | 'month' };

export interface CompiledField {
  path: string;
  segments: string[];
  category: string;
  transform: Transform;
  subject?: 'author';
  reason?: string;
}

export interface CompiledFreeText {
  recognisers: RecogniserId[];
  actionOf: Record<RecogniserId, FreeTextAction>;
}

export interface CompiledMediaRules {
  photos: { allow: boolean; category: string; types: PhotoType[]; maxPixels: number; maxDimension: number };
  videos: { allow: boolean; category: string; types: VideoType[] };
}

export interface CompiledTemplate {
  name: string;
  language: string;
  parameters: { text: TemplateLine; fallback: string }[];
}

export type CompiledDelivery =
  /** outsideWindow: the template sent instead where WhatsApp's 24-hour service window is closed. */
  | { type: 'text'; body: TemplateLine[]; outsideWindow?: CompiledTemplate }
  | ({ type: 'template' } & CompiledTemplate);

/** A template line: literal text and {path} placeholders, left out unless every placeholder crossed. */
export type TemplateLine = ({ text: string } | { field: string })[];

/** How a transform is named in the crossing manifest and the audit log. */
export function transformLabel(transform: Transform): string {
  switch (transform.kind) {
    case 'mask':
      return `mask(first=${transform.keepFirst},last=${transform.keepLast})`;
    case 'truncate':
      return `truncate(${transform.length})`;
    case 'generalise':
      return `generalise(${transform.to})`;
    default:
      return transform.kind;
  }
}
