/** The methods only sluice records: a DPO reads them as the person's own STOP, or WhatsApp's notice. */
export const WHATSAPP_OPT_OUT_METHOD = 'whatsapp-opt-out';
export const WHATSAPP_NUMBER_CHANGE_METHOD = 'whatsapp-number-change';
export const SLUICE_EVIDENCE_METHODS: ReadonlySet<string> = new Set([WHATSAPP_OPT_OUT_METHOD, WHATSAPP_NUMBER_CHANGE_METHOD]);

/**
 * How consent was captured, as the audit log may name it. The method is a code the integration
 * chooses, and a valid code can name a person (`annelies-vermeulen`); the log is append-only and
 * outlives erasure. So it names only these well-known methods (README, "A walk through with curl", step 1) and
 * writes any other as OTHER_EVIDENCE_METHOD: the exact method stays in the evidence the consent
 * ledger seals under the person's key, and in the entry's keyed digest of it.
 */
export const WELL_KNOWN_EVIDENCE_METHODS: ReadonlySet<string> = new Set([
  'contract',
  'email',
  'form',
  'import',
  'in-app',
  'paper-form',
  'phone-call',
  'sms',
  'verbal',
  'web-form',
  'whatsapp-opt-in',
  ...SLUICE_EVIDENCE_METHODS,
]);

export const OTHER_EVIDENCE_METHOD = 'other';

export function auditableEvidenceMethod(method: string): string {
  return WELL_KNOWN_EVIDENCE_METHODS.has(method) ? method : OTHER_EVIDENCE_METHOD;
}
