import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { AuditLogService } from '../audit/audit-log.service.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';
import { PolicyActivationEntity } from './infrastructure/policy-activation.entity.js';
import { PolicyRegistry } from './policy-registry.js';

/** Records in the audit log each time a different policy bundle starts deciding. */
@Injectable()
export class PolicyActivationService implements OnApplicationBootstrap {
  constructor(
    @Inject(PolicyRegistry) private readonly registry: PolicyRegistry,
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const bundle = this.registry.bundle;
    await this.transactions.run(async (manager) => {
      const repo = manager.getRepository(PolicyActivationEntity);
      // Replicas starting together: the first to take the lock records the activation, the others see it.
      await this.auditLog.lock(manager);
      const latest = await repo.findOne({ where: {}, order: { auditIndex: 'DESC' } });
      if (latest?.bundleHash === bundle.hash) return;
      const [entry] = await this.auditLog.append(manager, [
        {
          kind: 'policy.activated',
          body: {
            bundle: bundle.hash,
            policies: bundle.policies.map((p) => ({
              name: p.name,
              purpose: p.purpose,
              lawfulBasis: p.lawfulBasis,
              file: p.file,
              sha256: p.fileHash,
            })),
          },
        },
      ]);
      await repo.insert({ entryId: entry!.id, bundleHash: bundle.hash, auditIndex: entry!.index, activatedAt: new Date().toISOString() });
    });
  }
}
