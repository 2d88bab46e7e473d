/**
 * Where each code unit of a folded copy of a text came from: for unit n of the copy, the start
 * and end (exclusive) of the original code point it was read from. Folds that drop a code point
 * give it to the character before, so a span ending there covers it; folds that add units
 * ("⑫" read as "12") grow the table.
 */
export class CodeUnitOrigins {
  private starts: Uint32Array;
  private ends: Uint32Array;
  private length = 0;
  /** Where the units of the last code point added begin. */
  private lastAdded = 0;

  constructor(capacity: number) {
    this.starts = new Uint32Array(capacity);
    this.ends = new Uint32Array(capacity);
  }

  /** The next `units` code units of the copy are read from the code point at [start, end). */
  add(units: number, start: number, end: number): void {
    if (this.length + units > this.starts.length) {
      const capacity = Math.max(this.length + units, this.starts.length * 2);
      this.starts = grown(this.starts, capacity);
      this.ends = grown(this.ends, capacity);
    }
    this.lastAdded = this.length;
    for (let unit = 0; unit < units; unit++) {
      this.starts[this.length] = start;
      this.ends[this.length++] = end;
    }
  }

  /** The code point ending at `end` is read as nothing: it belongs to the one added last. */
  extendLast(end: number): void {
    if (this.length > 0) this.ends.fill(end, this.lastAdded, this.length);
  }

  table(): { starts: Uint32Array; ends: Uint32Array } {
    return { starts: this.starts.subarray(0, this.length), ends: this.ends.subarray(0, this.length) };
  }
}

function grown(offsets: Uint32Array, capacity: number): Uint32Array {
  const bigger = new Uint32Array(capacity);
  bigger.set(offsets);
  return bigger;
}
