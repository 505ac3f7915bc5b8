import t from 'tap';
import { createHash } from 'node:crypto';
import { generateKey, keyId, openCheckpoint, parseSigningKey, parseVerifierKey, signCheckpoint } from '../src/note.js';

t.test('keygen writes the note key formats and the C2SP key id', async (t) => {
  const { privateKey, publicKey } = await generateKey('audit.example');
  t.match(privateKey, /^PRIVATE\+KEY\+audit\.example\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
  t.match(publicKey, /^audit\.example\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
  const sk = await parseSigningKey(privateKey);
  const vk = parseVerifierKey(publicKey);
  t.same(sk.publicKey, vk.publicKey);
  // Key id = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4], computed here independently.
  const raw = Buffer.from(publicKey.split('+').slice(2).join('+'), 'base64');
  t.equal(raw[0], 0x01);
  const id = createHash('sha256')
    .update(Buffer.concat([Buffer.from('audit.example\n'), raw]))
    .digest()
    .subarray(0, 4);
  t.same(vk.keyId, id);
  t.same(keyId('audit.example', vk.publicKey), id);
  t.equal(publicKey.split('+')[1], id.toString('hex'));
  await t.rejects(generateKey('has space'), { code: 'PCX_AUDIT_BAD_KEY_NAME' });
  await t.rejects(parseSigningKey(publicKey), { code: 'PCX_AUDIT_BAD_KEY' });
  // A damaged key id is caught, and the message never quotes the key.
  const damaged = privateKey.replace(
    /\+([0-9a-f]{8})\+/,
    (_, h: string) => `+${h[0] === '0' ? '1' : '0'}${h.slice(1)}+`,
  );
  const e = await parseSigningKey(damaged).then(
    () => undefined,
    (x: Error) => x,
  );
  t.match(e?.message, /key id does not match/);
  t.notOk(e?.message.includes(privateKey.split('+').slice(4).join('+')), 'the message does not quote the key');
});

t.test('checkpoint note: exact text, signature verifies, any change is caught', async (t) => {
  const sk = await parseSigningKey((await generateKey('log-key')).privateKey);
  const root = createHash('sha256').update('x').digest();
  const note = await signCheckpoint({ origin: 'example.com/log', size: 42, root }, sk);
  const [text, sig] = note.split('\n\n');
  t.equal(text, `example.com/log\n42\n${root.toString('base64')}`);
  const m = /^\u2014 log-key ([A-Za-z0-9+/=]+)\n$/.exec(sig!);
  t.ok(m, 'signature line is "— <name> <base64>"');
  const blob = Buffer.from(m![1]!, 'base64');
  t.equal(blob.length, 68, '4-byte key id + 64-byte Ed25519 signature');
  t.same(blob.subarray(0, 4), sk.keyId);

  const opened = await openCheckpoint(note, sk);
  t.same(opened, { origin: 'example.com/log', size: 42, root });
  const bad = async (n: string, re: RegExp) => {
    const r = await openCheckpoint(n, sk);
    t.ok('error' in r && re.test(r.error), `${re}: ${JSON.stringify(r)}`);
  };
  await bad(note.replace('\n42\n', '\n43\n'), /does not verify/);
  await bad(note.replace('example.com/log', 'example.com/lag'), /does not verify/);
  await bad(note.replace(/ ([A-Za-z0-9+/]{4})/, ' AAAA'), /no signature by key|does not verify/);
  const other = await parseSigningKey((await generateKey('log-key')).privateKey);
  await bad(await signCheckpoint({ origin: 'example.com/log', size: 42, root }, other), /no signature by key log-key/);
  await bad(note.replace('\n\n', '\n'), /not a signed note/);
  await bad(note.replace('\n42\n', '\nforty\n'), /not a decimal/);
});
