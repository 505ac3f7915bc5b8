import t from 'tap';
import fc from 'fast-check';
import { LineDecoder, encodeFrame } from '../src/index.js';

function collect(max?: number) {
  const lines: string[] = [];
  let overflows = 0;
  const d = new LineDecoder(
    (l) => lines.push(l),
    () => overflows++,
    max === undefined ? {} : { maxFrameBytes: max },
  );
  return { d, lines, overflows: () => overflows };
}

t.test('frames split at arbitrary chunk boundaries come out whole and in order', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.jsonValue(), { maxLength: 20 }),
      fc.array(fc.nat({ max: 50 }), { maxLength: 30 }),
      (values, cuts) => {
        const bytes = Buffer.from(values.map(encodeFrame).join(''), 'utf8');
        const { d, lines } = collect();
        let at = 0;
        for (const c of cuts) {
          const end = Math.min(bytes.length, at + c);
          d.push(bytes.subarray(at, end));
          at = end;
        }
        d.push(bytes.subarray(at));
        t.same(
          lines.map((l) => JSON.parse(l)),
          JSON.parse(JSON.stringify(values)),
        );
      },
    ),
    { numRuns: 300 },
  );
});

t.test('a frame over the limit is reported once and nothing after it is delivered', async (t) => {
  const { d, lines, overflows } = collect(16);
  d.push(Buffer.from('{"a":1}\n'));
  d.push(Buffer.from('x'.repeat(10)));
  d.push(Buffer.from('y'.repeat(10)));
  d.push(Buffer.from('\n{"b":2}\n'));
  t.same(lines, ['{"a":1}']);
  t.equal(overflows(), 1);
  t.equal(d.bufferedBytes, 0);
});

t.test('a single chunk holding an oversized line overflows without buffering it', async (t) => {
  const { d, lines, overflows } = collect(8);
  d.push(Buffer.from('123456789\n'));
  t.same(lines, []);
  t.equal(overflows(), 1);
});

t.test('blank lines and CR are not frames; partial frames are counted', async (t) => {
  const { d, lines } = collect();
  d.push(Buffer.from('\n\r\n{"x"'));
  t.equal(d.bufferedBytes, 4);
  d.push(Buffer.from(':1}\n'));
  t.same(lines, ['{"x":1}']);
});
