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

t.test('note parsing follows C2SP signed-note: last blank line, known keys must verify, no controls', async (t) => {
  const sk = await parseSigningKey((await generateKey('log-key')).privateKey);
  const root = createHash('sha256').update('y').digest();
  const c = { origin: 'example.com/log', size: 7, root };
  const note = await signCheckpoint(c, sk);
  const [text, sigLine] = note.split('\n\n') as [string, string];
  const sig = Buffer.from(/ ([A-Za-z0-9+/=]+)\n$/.exec(sigLine)![1]!, 'base64');
  const line = (name: string, blob: Buffer) => `\u2014 ${name} ${blob.toString('base64')}`;
  const error = async (n: string) => {
    const r = await openCheckpoint(n, sk);
    return 'error' in r ? r.error : undefined;
  };
  // The text ends at the LAST blank line: a note with an extension line after an empty line is
  // split there, so its text has an empty line (not allowed in a checkpoint) instead of having its
  // "signature" region start at the first blank line.
  t.match(await error(`${text}\n\nx\n\n${sigLine}`), /checkpoint text has an empty line/);
  // A signature of the known key (name and id) with the wrong length is a failure, even with a
  // valid signature beside it; one that shares only the name or only the id is another key's.
  const short = Buffer.concat([sk.keyId, sig.subarray(4, 60)]);
  const long = Buffer.concat([sig, Buffer.from([0])]);
  t.match(await error(`${text}\n\n${line('log-key', short)}\n${sigLine}`), /is 56 bytes, not the 64 of an Ed25519/);
  t.match(await error(`${text}\n\n${sigLine}${line('log-key', long)}\n`), /is 65 bytes, not the 64/);
  const otherId = Buffer.concat([Buffer.from([1, 2, 3, 4]), sig.subarray(4, 20)]);
  const otherName = Buffer.concat([sk.keyId, sig.subarray(4, 20)]);
  t.same(
    await openCheckpoint(`${text}\n\n${line('log-key', otherId)}\n${line('witness', otherName)}\n${sigLine}`, sk),
    c,
    'signatures of other keys are ignored',
  );
  t.match(await error(`${text}\n\n${line('log-key', Buffer.from([1, 2, 3, 4]))}\n${sigLine}`), /malformed signature/);
  t.match(await error(`${text}\n\n\u2014 log\u0001key ${sig.toString('base64')}\n`), /contains U\+0001/);
  t.match(await error(note.replace('example.com/log', 'example.com/log\r')), /contains U\+000D/);
  t.match(await error(note.replace('\n', '\r\n')), /contains U\+000D/);
  t.match(await error(`${text}\n\n${`${sigLine}`.repeat(65)}`), /more than 64 signature lines/);
  t.same(await openCheckpoint(note, sk), c, 'the untouched note opens');
});
