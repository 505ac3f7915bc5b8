import t from 'tap';
import { PcxError, isPcxError } from '../src/index.js';

t.test('PcxError carries a stable code and serialises without the stack', async (t) => {
  const e = new PcxError('PCX_USAGE', 'something is wrong', { hint: 'fix it' });
  t.ok(isPcxError(e));
  t.equal(e.code, 'PCX_USAGE');
  t.equal(e.hint, 'fix it');
  t.same(JSON.parse(JSON.stringify(e)), { code: 'PCX_USAGE', message: 'something is wrong' });
  t.notOk(isPcxError(new Error('x')));
});
