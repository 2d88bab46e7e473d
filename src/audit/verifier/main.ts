/**
 * The offline verifier's own command line, for a copy shipped without the rest of sluice:
 * `node verifier/main.js <bundle> [--public-key <file|key>] [--trusted-checkpoint <file>]`.
 */
import { runVerifyCommand } from './verify-command.js';

runVerifyCommand(process.argv.slice(2), { out: process.stdout, err: process.stderr }).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
    process.exit(1);
  },
);
