/**
 * `npx sluice`: the offline verifier and the policy verbs are dispatched before anything else is
 * loaded, so that `sluice audit verify` runs none of the server's code (no database driver, no
 * configuration) and the policy review steps of a pull request start in half the time.
 */
const argv = process.argv.slice(2);
const io = { out: process.stdout, err: process.stderr };

async function run(): Promise<number> {
  if (argv[0] === 'audit' && argv[1] === 'verify') {
    const { runVerifyCommand } = await import('../audit/verifier/verify-command.js');
    return runVerifyCommand(argv.slice(2), io);
  }
  const { usageError } = await import('./usage-error.js');
  try {
    if (argv[0] === 'policy') {
      const { runPolicyCommand } = await import('../policy/cli/policy-cli.js');
      return await runPolicyCommand(argv[1], argv.slice(2), process.env, io);
    }
    const { runCli } = await import('./commands.js');
    return await runCli(argv);
  } catch (error) {
    const usage = usageError(error);
    if (usage === undefined) throw error;
    process.stderr.write(`${usage}\n`);
    return 2;
  }
}

run().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
    process.exit(1);
  },
);
