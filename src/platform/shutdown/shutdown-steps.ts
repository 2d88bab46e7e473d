/**
 * The steps of a shutdown still under way, by name, so that a shutdown that overruns its deadline
 * (or is cut short by a second signal) can say what it was waiting for. Names say what is being
 * waited for, never for whom: they end up in the log.
 */
export class ShutdownSteps {
  private readonly pending = new Map<number, string>();
  private nextId = 0;
  /** Told of each step as it begins (the server logs them: where a slow shutdown spends its time). */
  onBegin: ((name: string) => void) | undefined;

  /** Runs `work` as the step `name`: it counts as pending until `work` settles. */
  async run<T>(name: string, work: () => Promise<T> | T): Promise<T> {
    const id = this.nextId++;
    this.pending.set(id, name);
    this.onBegin?.(name);
    try {
      return await work();
    } finally {
      this.pending.delete(id);
    }
  }

  /** The steps still pending, in the order they began. */
  describePending(): string {
    return this.pending.size === 0 ? 'none' : [...this.pending.values()].join('; ');
  }
}

/** The process's steps: the signal handler (main.ts) reads them; the modules' shutdown hooks add theirs. */
export const shutdownSteps = new ShutdownSteps();
