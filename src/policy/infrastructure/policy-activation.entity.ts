import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity('policy_activations')
export class PolicyActivationEntity {
  @PrimaryColumn({ name: 'entry_id', type: 'varchar' }) entryId: string;
  @Column({ name: 'bundle_hash', type: 'varchar' }) bundleHash: string;
  @Column({ name: 'activated_at', type: 'varchar' }) activatedAt: string;
}
