import { describe, expect, it } from '@jest/globals';
import { together } from '../../../src/platform/database/sql.js';

describe('together: statements of one transaction started at once', () => {
  const later = <T>(ms: number, value: T, onDone?: () => void) =>
    new Promise<T>((resolve) =>
      setTimeout(() => {
        onDone?.();
        resolve(value);
      }, ms),
    );

  it('resolves with every value, in the order given', async () => {
    await expect(together([later(20, 'slow'), later(1, 42)])).resolves.toEqual(['slow', 42]);
  });

  it('rejects with the first failure only once every other branch has finished', async () => {
    // Were it to reject at once (Promise.all), the transaction would end while the slow branch
    // still had a statement to send on its connection.
    let slowFinished = false;
    const failing = Promise.reject(new Error('the first statement failed'));
    await expect(together([failing, later(50, 'slow', () => (slowFinished = true)), Promise.reject(new Error('a later failure'))])).rejects.toThrow('the first statement failed');
    expect(slowFinished).toBe(true);
  });
});
