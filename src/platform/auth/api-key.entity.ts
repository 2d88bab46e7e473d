import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity('api_keys')
export class ApiKeyEntity {
  @PrimaryColumn({ type: 'varchar' }) id: string;
  @Column({ type: 'varchar' }) name: string;
  /** SHA-256 of the secret: the secret itself is never stored. */
  @Column({ name: 'key_hash', type: 'varchar' }) keyHash: string;
  /** Space-separated scopes. */
  @Column({ type: 'varchar' }) scopes: string;
  @Column({ name: 'created_at', type: 'varchar' }) createdAt: string;
}
