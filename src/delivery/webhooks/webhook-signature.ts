/** X-Hub-Signature-256's form: "sha256=" and the 64 hex digits of the HMAC-SHA256 of the body under the app secret. */
export const SIGNATURE_FORM = /^sha256=([0-9a-fA-F]{64})$/;
