import type { SubjectRef } from '../consent/subject.js';
import type { ShareDecision } from '../policy/domain/evaluator.js';

/** A consent a message's content rests on: someone whose data crosses in it, and the purpose asked. */
export interface ContentConsent {
  subject: SubjectRef;
  purpose: string;
}

/**
 * The consents a share's messages rest on besides their recipients': the author and the tagged
 * people whose data crossed because they consented. Kept with each queued message (JSON; null
 * when none) so that a withdrawal of any of them before the message goes stops it.
 */
export function contentConsentsOf(decision: Pick<ShareDecision, 'subjects'>): string | null {
  const rested = decision.subjects.filter((s) => s.role !== 'recipient' && s.consent === 'granted' && s.categories.length > 0 && s.purpose !== undefined);
  if (rested.length === 0) return null;
  return JSON.stringify(rested.map((s): ContentConsent => ({ subject: { type: s.type, id: s.id }, purpose: s.purpose! })));
}

/** What `contentConsentsOf` kept. */
export function parseContentConsents(kept: string | null): ContentConsent[] {
  return kept === null ? [] : (JSON.parse(kept) as ContentConsent[]);
}
