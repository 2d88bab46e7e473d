import { parentPort, workerData } from 'node:worker_threads';
import { HASH_SIZE } from '../domain/merkle.js';
import type { BundleFormat } from './bundle-format.js';
import { EntryChecker } from './entry-checks.js';
import type { BatchRequest, BatchReply } from './entry-workers.js';

/** A verification thread: checks the batches of entry lines it is sent, replies in kind. */
const { format, until } = workerData as { format: BundleFormat; until: number };
const checker = new EntryChecker(format, until);

// A fault of the verifier itself (not of the bundle) ends the thread, which fails the verification as an error.
parentPort!.on('message', ({ seq, bytes, first }: BatchRequest) => {
  const result = checker.checkBatch(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), first);
  // A buffer of its own (never a slice of Node's shared pool), so it can be transferred.
  const hashes = new Uint8Array(result.nodes.length * HASH_SIZE);
  result.nodes.forEach((node, i) => hashes.set(node.hash, i * HASH_SIZE));
  const reply: BatchReply = { seq, levels: result.nodes.map((n) => n.level), hashes, failure: result.failure };
  parentPort!.postMessage(reply, [hashes.buffer]);
});
