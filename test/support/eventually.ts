/** Polls `probe` until it yields a value (not undefined), or fails naming `what` after the timeout. */
export async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, what: string | (() => string), timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
