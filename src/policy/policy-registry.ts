import { Inject, Injectable, Logger } from '@nestjs/common';
import { SLUICE_CONFIG, type SluiceConfig } from '../platform/config/config.js';
import { preloadOrdinaryWords } from './domain/lexicon/ordinary-words.js';
import { loadPolicyBundle, PolicyLoadError, type PolicyBundle, type PolicyProblem } from './domain/loader.js';

/**
 * Holds the active policy bundle. Loading at start throws on any invalid policy (with file and
 * line), which stops the start: sluice never runs on a policy it could not read. A reload keeps
 * the active bundle when the new one is invalid.
 */
@Injectable()
export class PolicyRegistry {
  private readonly logger = new Logger('Policies');
  private active: PolicyBundle;

  constructor(@Inject(SLUICE_CONFIG) private readonly config: SluiceConfig) {
    this.active = loadPolicyBundle(config.policiesDir);
    // Read at start, not inside the first decision that needs it (some 60 ms), and a missing list stops the start.
    preloadOrdinaryWords();
    this.logger.log(`loaded ${this.active.policies.length} policy file(s) from ${config.policiesDir}, bundle ${this.active.hash}`);
  }

  get bundle(): PolicyBundle {
    return this.active;
  }

  /** Reads the policies folder again; the caller activates the result (see PolicyActivationService). */
  load(): { bundle: PolicyBundle } | { problems: PolicyProblem[] } {
    try {
      return { bundle: loadPolicyBundle(this.config.policiesDir) };
    } catch (error) {
      if (error instanceof PolicyLoadError) return { problems: error.problems };
      return { problems: [{ file: this.config.policiesDir, line: 0, column: 0, message: `cannot read the policies: ${(error as Error).name}` }] };
    }
  }

  activate(bundle: PolicyBundle): void {
    this.active = bundle;
  }
}
