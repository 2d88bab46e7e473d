import { Inject, Injectable, Logger } from '@nestjs/common';
import { SLUICE_CONFIG, type SluiceConfig } from '../platform/config/config.js';
import { loadPolicyBundle, type PolicyBundle } from './domain/loader.js';

/**
 * Holds the policy bundle compiled at start. Loading throws on any invalid policy (with file and
 * line), which stops the start: sluice never runs on a policy it could not read.
 */
@Injectable()
export class PolicyRegistry {
  private readonly logger = new Logger('Policies');
  readonly bundle: PolicyBundle;

  constructor(@Inject(SLUICE_CONFIG) config: SluiceConfig) {
    this.bundle = loadPolicyBundle(config.policiesDir);
    this.logger.log(`loaded ${this.bundle.policies.length} policy file(s) from ${config.policiesDir}, bundle ${this.bundle.hash}`);
  }
}
