// `vault list --preview`: at most 4 characters, only for values of 16 bytes or more, only printable ones.
import t from 'tap';
import { maskedPreview } from '../src/command.js';
import { bytes } from './helpers.js';

t.test('a masked preview shows at most 4 characters of a long value, and nothing of a short one', async (t) => {
  t.equal(maskedPreview(bytes('sk_live_0123456789abcdef')), 'sk_l…');
  t.equal(maskedPreview(bytes('exactly-16-bytes')), 'exac…');
  t.equal(maskedPreview(bytes('only-15-bytes!!')), undefined, 'under 16 bytes: none');
  t.equal(maskedPreview(new Uint8Array(32).fill(0xff)), undefined, 'binary: none');
  t.equal(maskedPreview(bytes(' leading space and long')), undefined, 'a space is not shown');
});
