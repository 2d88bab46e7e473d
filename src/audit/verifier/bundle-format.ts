/**
 * The audit export bundle, written by the exporter and read by the offline verifier; defined in
 * schemas/audit-export.schema.json and docs/audit-export.md. Two forms carry the same content:
 *
 * NDJSON: line 1 is the header (compact JSON); each further line is one entry,
 *   {"leaf":"<base64 leaf hash>","entry":<the entry's canonical text, as is>}
 * so the bytes hashed into the leaf are a slice of the line (no unescaping on the hot path).
 *
 * CSV (RFC 4180, CRLF): a row of column names, a `bundle` row holding the header JSON, then one
 * `entry` row per entry with index, kind and time for reading and the leaf hash in hex.
 */

export const BUNDLE_FORMAT = 'sluice.audit-export';
export const BUNDLE_VERSION = 1;

export interface BundleHeader {
  format: typeof BUNDLE_FORMAT;
  version: typeof BUNDLE_VERSION;
  since: number;
  until: number;
  /** The signed checkpoint note the entries are proven against. */
  checkpoint: string;
  publicKey: string | null;
  rangeProof: { left: string[]; right: string[] };
  consistency: { from: number; fromRoot: string; proof: string[] } | null;
}

export type BundleFormat = 'ndjson' | 'csv';

/** `{"leaf":"` + 44 base64 characters + `","entry":`: the entry starts at a fixed offset. */
export const ENTRY_LINE_PREFIX = '{"leaf":"';
export const ENTRY_LINE_INFIX = '","entry":';
export const BASE64_HASH_LENGTH = 44;
export const ENTRY_TEXT_OFFSET = ENTRY_LINE_PREFIX.length + BASE64_HASH_LENGTH + ENTRY_LINE_INFIX.length;

export const CSV_COLUMNS = 'record,index,kind,time,leaf_hash,data';
export const CSV_NEWLINE = '\r\n';

/** The header as the bundle's first line (or CSV `bundle` row) carries it: key order as here. */
export function headerJson(header: BundleHeader): string {
  const { format, version, since, until, checkpoint, publicKey, rangeProof, consistency } = header;
  return JSON.stringify({ format, version, since, until, checkpoint, publicKey, rangeProof, consistency });
}

export function ndjsonEntryLine(leafHash: Uint8Array, canonicalText: string): string {
  return `${ENTRY_LINE_PREFIX}${Buffer.from(leafHash).toString('base64')}${ENTRY_LINE_INFIX}${canonicalText}}\n`;
}

export function csvQuote(field: string): string {
  return `"${field.replaceAll('"', '""')}"`;
}

export function csvPreamble(header: BundleHeader): string {
  return `${CSV_COLUMNS}${CSV_NEWLINE}bundle,,,,,${csvQuote(headerJson(header))}${CSV_NEWLINE}`;
}

/** Index, kind and time are repeated from the entry for reading in a spreadsheet; the verifier checks they match. */
export function csvEntryRow(entry: { index: number; kind: string; time: string }, leafHash: Uint8Array, canonicalText: string): string {
  return `entry,${entry.index},${entry.kind},${entry.time},${Buffer.from(leafHash).toString('hex')},${csvQuote(canonicalText)}${CSV_NEWLINE}`;
}
