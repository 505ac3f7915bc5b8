/**
 * Hot path: calls made during one event-loop turn are handed to `fn` together at the end of
 * that turn (setImmediate, the check phase right after I/O polling), so that the RPC clients
 * write them as one batch of frames — one syscall and one batch for the PDP or the sink to
 * process — instead of one write (and one peer wake-up) per request under load. It costs one
 * loop hop (microseconds), never a timer: at concurrency 1 the call leaves in the same turn.
 * Order is kept; each call settles exactly as `fn`'s promise for it does.
 */
export function coalescePerTurn<A, R>(fn: (arg: A) => Promise<R>): (arg: A) => Promise<R> {
  let queue: Array<{ arg: A; resolve: (r: R) => void; reject: (e: unknown) => void }> = [];
  const run = (): void => {
    const batch = queue;
    queue = [];
    for (const c of batch) {
      let p: Promise<R>;
      try {
        p = fn(c.arg);
      } catch (e) {
        p = Promise.reject(e);
      }
      p.then(c.resolve, c.reject);
    }
  };
  return (arg) =>
    new Promise<R>((resolve, reject) => {
      if (queue.length === 0) setImmediate(run);
      queue.push({ arg, resolve, reject });
    });
}
