import { Column, Entity, PrimaryColumn } from 'typeorm';
import { jsonText } from '../../platform/database/column-transformers.js';

/** One change of consent, as it happened: never updated, never deleted. */
@Entity('consent_events')
export class ConsentEventEntity {
  @PrimaryColumn({ type: 'varchar' }) id: string;
  @Column({ name: 'subject_type', type: 'varchar' }) subjectType: string;
  /** The subject's pseudonym (ps_...), keyed by their own key: unlinkable once it is destroyed. */
  @Column({ name: 'subject_id', type: 'varchar' }) subjectId: string;
  /** As the audit entry holds it: `(unlisted)` for a purpose no policy named when it was recorded (see `evidence`). */
  @Column({ type: 'varchar' }) purpose: string;
  @Column({ type: 'varchar' }) status: 'granted' | 'withdrawn';
  /**
   * `{ sealed }`: the evidence, sealed under the subject's key with the event id as context; and
   * `purpose`, the unlisted purpose sealed likewise (context `consent <id> purpose`).
   */
  @Column({ type: 'text', transformer: jsonText }) evidence: Record<string, unknown>;
  /** The consent.granted/withdrawn entry that records this change. */
  @Column({ name: 'audit_entry', type: 'varchar' }) auditEntry: string;
  @Column({ name: 'recorded_at', type: 'varchar' }) recordedAt: string;
}

/** Current state per (subject, purpose): a projection of consent_events, read by every decision. */
@Entity('consent_states')
export class ConsentStateEntity {
  @PrimaryColumn({ name: 'subject_type', type: 'varchar' }) subjectType: string;
  @PrimaryColumn({ name: 'subject_id', type: 'varchar' }) subjectId: string;
  @PrimaryColumn({ type: 'varchar' }) purpose: string;
  @Column({ type: 'varchar' }) status: 'granted' | 'withdrawn';
  @Column({ name: 'event_id', type: 'varchar' }) eventId: string;
  @Column({ name: 'updated_at', type: 'varchar' }) updatedAt: string;
  /** When the change that set this state was captured (its evidence's capturedAt, else when it was recorded). */
  @Column({ name: 'captured_at', type: 'varchar', nullable: true }) capturedAt: string | null;
}
