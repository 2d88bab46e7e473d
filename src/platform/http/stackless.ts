/**
 * Makes a client-error exception without a stack trace. A 4xx answer never shows or logs one
 * (ProblemDetailsFilter logs 5xx only, span exports drop stacks), and capturing it costs several
 * µs per refused request: the cost a flood of bad requests would make the gateway pay.
 */
export function withoutStackTrace<T>(make: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * Class decorator: every instance of the class, and of its subclasses, is made without a stack
 * trace (withoutStackTrace), wherever it is constructed. A derived constructor cannot call
 * super() inside a function, so the construction as a whole is wrapped instead.
 */
export function Stackless<T extends abstract new (...args: never[]) => Error>(type: T): T {
  const stackless = new Proxy(type, {
    construct: (target, args, newTarget) => withoutStackTrace(() => Reflect.construct(target, args, newTarget)),
  });
  // So that `error.constructor` is the class as exported.
  Object.defineProperty(type.prototype, 'constructor', { value: stackless, writable: true, configurable: true });
  return stackless;
}
