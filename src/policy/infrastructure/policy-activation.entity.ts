import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../../platform/database/column-transformers.js';

@Entity('policy_activations')
export class PolicyActivationEntity {
  @PrimaryColumn({ name: 'entry_id', type: 'varchar' }) entryId: string;
  @Column({ name: 'bundle_hash', type: 'varchar' }) bundleHash: string;
  @Column({ name: 'audit_index', type: 'bigint', transformer: bigintAsNumber }) auditIndex: number;
  @Column({ name: 'activated_at', type: 'varchar' }) activatedAt: string;
}
