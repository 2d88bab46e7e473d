import type { EntityManager } from 'typeorm';
import {
  consistencyProof,
  consistencyProofCoordinates,
  inclusionProof,
  inclusionProofCoordinates,
  type NodeCoordinate,
  type NodeLookup,
  rangeProof,
  rangeProofCoordinates,
  type RangeProof,
  rootAt,
  rootCoordinates,
} from '../domain/merkle.js';
import { AuditCheckpointEntity, AuditSubtreeEntity } from '../infrastructure/audit.entities.js';

/** Proofs as the API serves them: hashes in standard base64. */
export interface InclusionProofView {
  index: number;
  size: number;
  leafHash: string;
  rootHash: string;
  proof: string[];
}

export interface ConsistencyProofView {
  from: number;
  to: number;
  fromRootHash: string;
  toRootHash: string;
  proof: string[];
}

export interface LatestCheckpoint {
  size: number;
  note: string;
}

const b64 = (hash: Uint8Array) => Buffer.from(hash).toString('base64');

/**
 * Reads the stored Merkle tree: the latest checkpoint, and the complete subtrees a proof or root
 * needs, all of them in one query (O(log n) rows). Nodes that are not stored complete subtrees
 * are computed from the ones that are (domain/merkle.ts). Stored rows never change once written,
 * so these reads need no transaction.
 */
export class AuditTreeReader {
  constructor(private readonly manager: EntityManager) {}

  async latestCheckpoint(): Promise<LatestCheckpoint | null> {
    const latest = await this.manager.getRepository(AuditCheckpointEntity).findOne({ where: {}, order: { treeSize: 'DESC' } });
    return latest ? { size: latest.treeSize, note: latest.note } : null;
  }

  /** RFC 9162 2.1.3 inclusion proof of leaf `index` in the tree of `size` leaves, with the leaf hash and root. */
  async inclusion(index: number, size: number): Promise<InclusionProofView> {
    const lookup = await this.subtrees([{ level: 0, index }, ...inclusionProofCoordinates(index, size), ...rootCoordinates(size)]);
    return {
      index,
      size,
      leafHash: b64(required(lookup, 0, index)),
      rootHash: b64(rootAt(size, lookup)),
      proof: inclusionProof(index, size, lookup).map(b64),
    };
  }

  /** RFC 9162 2.1.4 consistency proof between the trees of `from` and `to` leaves, with both roots. */
  async consistency(from: number, to: number): Promise<ConsistencyProofView> {
    const lookup = await this.subtrees([...consistencyProofCoordinates(from, to), ...rootCoordinates(from), ...rootCoordinates(to)]);
    return {
      from,
      to,
      fromRootHash: b64(rootAt(from, lookup)),
      toRootHash: b64(rootAt(to, lookup)),
      proof: consistencyProof(from, to, lookup).map(b64),
    };
  }

  /** The subtrees left and right of leaves [start, end) in the tree of `size` leaves (domain rangeProof). */
  async rangeProof(start: number, end: number, size: number): Promise<RangeProof> {
    const { left, right } = rangeProofCoordinates(start, end, size);
    return rangeProof(start, end, size, await this.subtrees([...left, ...right]));
  }

  private async subtrees(coordinates: NodeCoordinate[]): Promise<NodeLookup> {
    const wanted = new Map(coordinates.map((c) => [`${c.level}/${c.index}`, c]));
    const rows = wanted.size === 0 ? [] : await this.manager.getRepository(AuditSubtreeEntity).find({ where: [...wanted.values()].map(({ level, index }) => ({ level, index })) });
    const byKey = new Map(rows.map((row) => [`${row.level}/${row.index}`, Buffer.from(row.hash, 'hex')]));
    return (level, index) => byKey.get(`${level}/${index}`);
  }
}

function required(lookup: NodeLookup, level: number, index: number): Uint8Array {
  const hash = lookup(level, index);
  if (!hash) throw new Error(`audit log is missing subtree ${level}/${index}`);
  return hash;
}
