/**
 * A purpose as the audit log may hold it. Purposes are codes an integration chooses, and a valid
 * code can name a person (`jan-de-vries-private`); the log is append-only and outlives erasure.
 * So it holds in clear only a purpose the policy bundle in force names (reviewed with the policy
 * files); any other it writes as UNLISTED_PURPOSE with a keyed digest, and possibly the purpose
 * sealed, under the key of the person it concerns: readable to them, unlinkable after erasure.
 */
export const UNLISTED_PURPOSE = '(unlisted)';

export type AuditablePurpose = { purpose: string } | { purpose: typeof UNLISTED_PURPOSE; purposeDigest: string; purposeSealed?: string };

/** The entry's purpose fields; `seal` keeps the purpose readable for the person where nothing else holds it. */
export function auditablePurpose(purpose: string, listed: ReadonlySet<string>, digest: (value: string) => string, seal?: (value: string) => string): AuditablePurpose {
  if (listed.has(purpose)) return { purpose };
  return { purpose: UNLISTED_PURPOSE, purposeDigest: digest(purpose), ...(seal ? { purposeSealed: seal(purpose) } : {}) };
}
