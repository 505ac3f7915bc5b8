import t from 'tap';
import { closestName } from '../src/index.js';

t.test('closestName: nearest candidate within a third of the length, else none', async (t) => {
  t.equal(closestName('net.conect', ['net.connect', 'net.http', 'fs.read']), 'net.connect');
  t.equal(closestName('hots', ['host', 'port', 'ip']), 'host', 'a transposition counts as one edit');
  t.equal(closestName('CHEK', ['check', 'fmt']), 'check', 'case-insensitive');
  t.equal(closestName('ab', ['ba', 'ab2']), 'ab2', 'ties go to the alphabetically first');
  t.equal(closestName('frobnicate', ['check', 'fmt', 'eval']), undefined, 'nothing close enough');
  t.equal(closestName('x', []), undefined);
});
