import { isAscii, isUtf8 } from 'node:buffer';
import { CompactRange, createLeafHasher, type SubtreeNode } from '../domain/merkle.js';
import { BASE64_HASH_LENGTH, type BundleFormat, ENTRY_LINE_INFIX, ENTRY_LINE_PREFIX, ENTRY_TEXT_OFFSET } from './bundle-format.js';
import { isCanonicalJsonText } from './canonical-text.js';
import { bundleSchemas, describeSchemaError } from './schemas.js';

export interface VerificationFailure {
  /** The first bad entry's index, or null when the fault is not in one entry (header, checkpoint, proofs, root). */
  index: number | null;
  reason: string;
}

/** What a batch of entry lines came to: their complete subtrees, or where and why they went wrong. */
export interface BatchResult {
  /** The complete subtrees of the leaves of the entries that passed (their compact range), left to right. */
  nodes: Pick<SubtreeNode, 'level' | 'hash'>[];
  failure: VerificationFailure | null;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const PREFIX_BYTES = Buffer.from(ENTRY_LINE_PREFIX, 'latin1');
const INFIX_BYTES = Buffer.from(ENTRY_LINE_INFIX, 'latin1');
const INFIX_OFFSET = ENTRY_LINE_PREFIX.length + BASE64_HASH_LENGTH;
const LAYOUT = 'the line is not {"leaf":"<base64 leaf hash>","entry":<entry>}';
const CSV_ENTRY_ROW = /^entry,(0|[1-9][0-9]{0,15}),([^,"]*),([^,"]*),([0-9a-f]{64}),"(.*)"$/s;

class EntryFailed extends Error {
  constructor(
    readonly index: number,
    reason: string,
  ) {
    super(reason);
  }
}

interface ParsedEntry {
  index: number;
  kind: string;
  time: string;
}

/**
 * The checks of every entry line, in this order (the first that fails names the entry): the line's
 * layout, valid UTF-8, JSON, RFC 8785 canonical form (so the text is the one that was hashed), the
 * entry schema, the index that belongs at its place (contiguous, in order, none after `until`),
 * and its leaf hash as recorded. Batches of lines can be checked on any thread.
 */
export class EntryChecker {
  private readonly hashLeaf = createLeafHasher();
  private readonly schemas = bundleSchemas();

  constructor(
    private readonly format: BundleFormat,
    private readonly until: number,
  ) {}

  /** Checks the lines in `bytes` (each ending in \n), the first being the entry of index `first`. */
  checkBatch(bytes: Buffer, first: number): BatchResult {
    const range = CompactRange.startingAt(first);
    let start = 0;
    try {
      if (this.format === 'ndjson' && isAscii(bytes)) {
        // What the gateway writes is plain ASCII: then the batch is read as one string, each line's
        // layout, entry text and recorded leaf are slices of it, and its offsets are byte offsets.
        const text = bytes.toString('latin1');
        for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
          range.appendLeafHash(this.asciiNdjsonLine(text, bytes, start, newline, range.end));
          start = newline + 1;
        }
      } else {
        for (let newline = bytes.indexOf(NEWLINE); newline !== -1; newline = bytes.indexOf(NEWLINE, start)) {
          range.appendLeafHash(this.format === 'ndjson' ? this.ndjsonLine(bytes, start, newline, range.end) : this.csvLine(bytes, start, newline, range.end));
          start = newline + 1;
        }
      }
    } catch (error) {
      if (!(error instanceof EntryFailed)) throw error;
      return { nodes: range.nodes(), failure: { index: error.index, reason: error.message } };
    }
    return { nodes: range.nodes(), failure: null };
  }

  private asciiNdjsonLine(text: string, bytes: Buffer, start: number, end: number, index: number): Buffer {
    if (
      end - start < ENTRY_TEXT_OFFSET + 3 ||
      !text.startsWith(ENTRY_LINE_PREFIX, start) ||
      !text.startsWith(ENTRY_LINE_INFIX, start + INFIX_OFFSET) ||
      text.charCodeAt(end - 1) !== 0x7d
    ) {
      throw new EntryFailed(index, LAYOUT);
    }
    this.checkEntry(index, text.slice(start + ENTRY_TEXT_OFFSET, end - 1));
    return this.checkLeaf(index, bytes.subarray(start + ENTRY_TEXT_OFFSET, end - 1), text.slice(start + PREFIX_BYTES.length, start + INFIX_OFFSET), 'base64');
  }

  private ndjsonLine(bytes: Buffer, start: number, end: number, index: number): Buffer {
    if (
      end - start < ENTRY_TEXT_OFFSET + 3 ||
      bytes.compare(PREFIX_BYTES, 0, PREFIX_BYTES.length, start, start + PREFIX_BYTES.length) !== 0 ||
      bytes.compare(INFIX_BYTES, 0, INFIX_BYTES.length, start + INFIX_OFFSET, start + INFIX_OFFSET + INFIX_BYTES.length) !== 0 ||
      bytes[end - 1] !== 0x7d
    ) {
      throw new EntryFailed(index, LAYOUT);
    }
    const recorded = bytes.toString('latin1', start + PREFIX_BYTES.length, start + INFIX_OFFSET);
    const entryBytes = bytes.subarray(start + ENTRY_TEXT_OFFSET, end - 1);
    if (!isUtf8(entryBytes)) throw new EntryFailed(index, 'the entry is not valid UTF-8');
    this.checkEntry(index, entryBytes.toString('utf8'));
    return this.checkLeaf(index, entryBytes, recorded, 'base64');
  }

  private csvLine(bytes: Buffer, start: number, end: number, index: number): Buffer {
    if (bytes[end - 1] !== CARRIAGE_RETURN) throw new EntryFailed(index, 'the row does not end in CRLF');
    const rowBytes = bytes.subarray(start, end - 1);
    if (!isUtf8(rowBytes)) throw new EntryFailed(index, 'the row is not valid UTF-8');
    const match = CSV_ENTRY_ROW.exec(rowBytes.toString('utf8'));
    if (!match || match[5]!.replaceAll('""', '').includes('"')) {
      throw new EntryFailed(index, 'the row is not entry,<index>,<kind>,<time>,<leaf hash hex>,"<entry>"');
    }
    const [, indexColumn, kind, time, leafHex, quoted] = match;
    const text = quoted!.replaceAll('""', '"');
    const entry = this.checkEntry(index, text);
    if (indexColumn !== String(entry.index) || kind !== entry.kind || time !== entry.time) {
      throw new EntryFailed(index, "the row's index, kind or time column differs from the entry's");
    }
    return this.checkLeaf(index, Buffer.from(text, 'utf8'), leafHex!, 'hex');
  }

  private checkEntry(index: number, text: string): ParsedEntry {
    if (index > this.until) throw new EntryFailed(index, `the bundle holds entries after index ${this.until}, the last its header announces`);
    // The fast path accepts only what the checks below accept; everything else, faults included, takes them.
    const matched = this.schemas.entryMatcher.match(text);
    if (matched !== null && matched.index === index) return matched;
    let entry: ParsedEntry;
    try {
      entry = JSON.parse(text) as ParsedEntry;
    } catch {
      throw new EntryFailed(index, 'the entry is not JSON');
    }
    if (!isCanonicalJsonText(text)) throw new EntryFailed(index, 'the entry is not in RFC 8785 canonical form, so it is not the text that was hashed');
    if (!this.schemas.entry(entry)) {
      throw new EntryFailed(index, `the entry does not match audit-entry.schema.json: ${describeSchemaError(this.schemas.entry.errors)}`);
    }
    if (entry.index !== index) {
      throw new EntryFailed(index, `the entry says index ${entry.index} where ${index} belongs: entries must be contiguous and in order (one missing, added or moved?)`);
    }
    return entry;
  }

  private checkLeaf(index: number, entryBytes: Buffer, recorded: string, encoding: 'base64' | 'hex'): Buffer {
    const leaf = this.hashLeaf(entryBytes);
    if (leaf.toString(encoding) !== recorded) throw new EntryFailed(index, 'the entry does not hash to the leaf hash recorded for it: the entry or its leaf hash was changed');
    return leaf;
  }
}
