import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { watch, type FSWatcher } from 'node:fs';
import { AuditLogService } from '../audit/audit-log.service.js';
import { AuditSequencer } from '../audit/audit-sequencer.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../platform/config/config.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';
import type { PolicyBundle } from './domain/loader.js';
import { PolicyActivationEntity } from './infrastructure/policy-activation.entity.js';
import { PolicyRegistry } from './policy-registry.js';

export type ReloadOutcome = { status: 'activated' | 'unchanged'; bundle: string } | { status: 'refused'; bundle: string; problems: number };

/**
 * Records in the audit log each time a different policy bundle starts deciding, at start and on
 * reload (SIGHUP, or a change in the folder with POLICIES_WATCH=true). A bundle is active only
 * after its policy.activated entry is committed, so every decision it makes comes after it in
 * the log. An invalid bundle is refused and the last good one stays.
 */
@Injectable()
export class PolicyActivationService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Policies');
  private readonly onHangup = () => void this.reload();
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private reloading: Promise<ReloadOutcome> | undefined;

  constructor(
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
    @Inject(PolicyRegistry) private readonly registry: PolicyRegistry,
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(AuditSequencer) private readonly sequencer: AuditSequencer,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.record(this.registry.bundle);
    process.on('SIGHUP', this.onHangup);
    if (this.config.policiesWatch) {
      this.watcher = watch(this.config.policiesDir, () => {
        clearTimeout(this.debounce);
        // Editors write a file in several steps: reload once the folder is quiet.
        this.debounce = setTimeout(() => void this.reload(), 200);
      });
    }
  }

  async onApplicationShutdown(): Promise<void> {
    process.off('SIGHUP', this.onHangup);
    clearTimeout(this.debounce);
    this.watcher?.close();
    await this.reloading;
  }

  /** Loads the folder again and activates it if it is valid and different. Never throws. */
  reload(): Promise<ReloadOutcome> {
    // One reload at a time; a signal during a reload waits for it and then reads the folder again.
    const next = (this.reloading ?? Promise.resolve()).then(() => this.reloadNow());
    const settled: Promise<ReloadOutcome> = next.finally(() => {
      if (this.reloading === settled) this.reloading = undefined;
    });
    this.reloading = settled;
    return next;
  }

  /**
   * Never rejects: a reload comes from a signal or a file watcher, where a rejection would go
   * unhandled (and end the process), and the next reload waits for this one.
   */
  private async reloadNow(): Promise<ReloadOutcome> {
    try {
      return await this.loadAndActivate();
    } catch (error) {
      this.logger.error(`policy reload failed (${(error as Error).name}): kept the active bundle ${this.registry.bundle.hash}`);
      return { status: 'refused', bundle: this.registry.bundle.hash, problems: 0 };
    }
  }

  private async loadAndActivate(): Promise<ReloadOutcome> {
    const loaded = this.registry.load();
    if ('problems' in loaded) {
      for (const p of loaded.problems) this.logger.error(`policy reload refused: ${p.file}:${p.line}:${p.column} ${p.message}`);
      this.logger.error(`kept the active bundle ${this.registry.bundle.hash}`);
      return { status: 'refused', bundle: this.registry.bundle.hash, problems: loaded.problems.length };
    }
    // Unchanged only if the log says so too: an activation recorded whose wait for its log index
    // failed was refused here, and the log would otherwise go on naming a bundle that never decided.
    if (loaded.bundle.hash === this.registry.bundle.hash && (await this.latestRecorded()) === loaded.bundle.hash) return { status: 'unchanged', bundle: loaded.bundle.hash };
    try {
      await this.record(loaded.bundle);
    } catch (error) {
      this.logger.error(`policy reload refused: the activation could not be recorded (${(error as Error).name})`);
      return { status: 'refused', bundle: this.registry.bundle.hash, problems: 0 };
    }
    this.registry.activate(loaded.bundle);
    this.logger.log(`activated policy bundle ${loaded.bundle.hash} (${loaded.bundle.policies.length} file(s))`);
    return { status: 'activated', bundle: loaded.bundle.hash };
  }

  private async latestRecorded(): Promise<string | undefined> {
    const latest = await this.transactions.read((manager) => manager.getRepository(PolicyActivationEntity).findOne({ where: {}, order: { activatedAt: 'DESC', entryId: 'DESC' } }));
    return latest?.bundleHash;
  }

  /** Records the activation and waits until it is in the log, so no decision of the bundle precedes it. */
  private async record(bundle: PolicyBundle): Promise<void> {
    const entryId = await this.transactions.run(async (manager) => {
      const repo = manager.getRepository(PolicyActivationEntity);
      // Replicas starting together: the first to take the lock records the activation, the others see it.
      await this.transactions.exclusive(manager, 'sluice:policy-activation');
      const latest = await repo.findOne({ where: {}, order: { activatedAt: 'DESC', entryId: 'DESC' } });
      if (latest?.bundleHash === bundle.hash) return latest.entryId;
      const [entry] = await this.auditLog.append(manager, [
        {
          kind: 'policy.activated',
          body: {
            bundle: bundle.hash,
            policies: bundle.policies.map((p) => ({
              name: p.name,
              purpose: p.purpose,
              lawfulBasis: p.lawfulBasis,
              // So the log itself shows why a purpose only a consent rule asks for is held in clear.
              consentPurposes: [...new Set([p.recipientConsent?.purpose, p.author?.consent.purpose, p.mentioned?.consent.purpose].filter((x) => x !== undefined))].sort(),
              file: p.file,
              sha256: p.fileHash,
            })),
          },
        },
      ]);
      await repo.insert({ entryId: entry!.id, bundleHash: bundle.hash, activatedAt: new Date().toISOString() });
      return entry!.id;
    });
    await this.sequencer.awaitIndices([entryId]);
  }
}
