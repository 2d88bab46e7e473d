import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { HASH_SIZE } from '../domain/merkle.js';
import type { BundleFormat } from './bundle-format.js';
import type { BatchResult, VerificationFailure } from './entry-checks.js';

export interface BatchRequest {
  seq: number;
  bytes: Uint8Array;
  first: number;
}

export interface BatchReply {
  seq: number;
  levels: number[];
  /** The nodes' hashes, 32 bytes each, in the order of `levels`. */
  hashes: Uint8Array;
  failure: VerificationFailure | null;
}

const WORKER_URL = new URL('./entry-worker.js', import.meta.url);

/** Whether the compiled worker is at hand (it is not when the TypeScript sources run, under jest). */
export function entryWorkersAvailable(): boolean {
  return existsSync(fileURLToPath(WORKER_URL));
}

/** Threads that check batches of entry lines, round robin; results come back by batch number. */
export class EntryWorkers {
  private readonly workers: Worker[];
  private readonly waiting = new Map<number, { resolve: (result: BatchResult) => void; reject: (error: Error) => void }>();
  private sent = 0;

  constructor(threads: number, format: BundleFormat, until: number) {
    this.workers = Array.from({ length: threads }, () => {
      const worker = new Worker(WORKER_URL, { workerData: { format, until } });
      worker.on('message', (reply: BatchReply) => this.settle(reply));
      worker.on('error', (error) => this.abort(error));
      return worker;
    });
  }

  /** Sends a batch; `bytes` must be a buffer of its own, which is handed over to the thread. */
  check(bytes: Buffer, first: number): Promise<BatchResult> {
    const seq = this.sent++;
    const request: BatchRequest = { seq, bytes, first };
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      this.workers[seq % this.workers.length]!.postMessage(request, [bytes.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private settle(reply: BatchReply): void {
    const pending = this.waiting.get(reply.seq);
    this.waiting.delete(reply.seq);
    const hashes = Buffer.from(reply.hashes.buffer, reply.hashes.byteOffset, reply.hashes.byteLength);
    pending?.resolve({
      nodes: reply.levels.map((level, i) => ({ level, hash: hashes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE) })),
      failure: reply.failure,
    });
  }

  private abort(error: Error): void {
    for (const pending of this.waiting.values()) pending.reject(error);
    this.waiting.clear();
  }
}
