import t from 'tap';
import { coalescePerTurn } from '../src/coalesce.js';

t.test('calls of one turn reach fn together, later, in order; each settles as its own call', async (tt) => {
  const seen: Array<{ arg: number; turn: number }> = [];
  let turn = 0;
  const ticker = setInterval(() => turn++, 0);
  tt.teardown(() => clearInterval(ticker));
  const fn = coalescePerTurn(async (n: number) => {
    seen.push({ arg: n, turn });
    if (n === 3) throw new Error('three');
    if (n === 4) return Promise.reject(new Error('four'));
    return n * 10;
  });
  const calls = [1, 2, 3, 4, 5].map((n) => fn(n));
  tt.equal(seen.length, 0, 'nothing is called in the caller turn');
  const settled = await Promise.allSettled(calls);
  tt.same(
    seen.map((s) => s.arg),
    [1, 2, 3, 4, 5],
    'called once each, in order',
  );
  tt.equal(new Set(seen.map((s) => s.turn)).size, 1, 'all in the same turn');
  tt.same(
    settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)),
    [10, 20, 'three', 'four', 50],
  );
});

t.test('a synchronous throw rejects that call only; a later turn is a new batch', async (tt) => {
  const batches: number[][] = [];
  let current: number[] | undefined;
  const fn = coalescePerTurn((n: number): Promise<number> => {
    if (!current) {
      current = [];
      batches.push(current);
      setImmediate(() => (current = undefined));
    }
    current.push(n);
    if (n === 2) throw new Error('sync');
    return Promise.resolve(n);
  });
  const first = await Promise.allSettled([fn(1), fn(2)]);
  tt.same(
    first.map((s) => s.status),
    ['fulfilled', 'rejected'],
  );
  tt.equal(await fn(3), 3);
  tt.same(batches, [[1, 2], [3]]);
});
