// The kept policy versions, with the daemon in-process: a version is on disk before it is
// served, and when it cannot be kept the new set is not served (the last good one stays, health
// and the log say why); a versions directory that cannot be used refuses the start; a kept file
// is read back only if it still hashes to its name.
import t from 'tap';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isPcxError } from '@portcullis/protocol';
import { startPdp } from '../src/index.js';
import { loadVersion } from '../src/versions.js';
import { BASE_POLICY, startTestPdp, tempDir } from './helpers.js';

const V2 = 'policy "v2" {\n  deny net.connect when resource.host == "ok.example"\n}\n';

t.test('each version served is kept first; one that cannot be kept is not served', async (t) => {
  const versions = join(tempDir(t), 'versions');
  const { pdp, policyPath, logs } = await startTestPdp(t, { versionsDir: versions });
  const v1 = pdp.health().policy_version!;
  t.same(readdirSync(versions), [`${v1.slice(7)}.json`]);
  t.same(await loadVersion(versions, v1), [{ path: 'policy.pol', name: 'policy.pol', text: BASE_POLICY }]);

  // The directory becomes unusable (a file where it was): the changed set is refused, v1 stays.
  rmSync(versions, { recursive: true });
  writeFileSync(versions, 'not a directory');
  writeFileSync(policyPath, V2);
  await pdp.reload();
  const h = pdp.health();
  t.equal(h.policy_version, v1, 'the last kept version stays in force');
  t.equal(h.stale, true);
  t.match(h.last_reload, { ok: false, error: { code: 'PCX_PDP_VERSION_STORE', message: /keeping sha256:/ } });
  t.match(logs.join('\n'), /cannot keep policy sha256:[0-9a-f]{64} in .*ENOTDIR/);

  // Usable again: the next reload keeps v2, then serves it.
  rmSync(versions);
  mkdirSync(versions);
  writeFileSync(policyPath, `${V2}# again\n`);
  await pdp.reload();
  const v2 = pdp.health().policy_version!;
  t.not(v2, v1);
  t.same(readdirSync(versions), [`${v2.slice(7)}.json`]);
});

t.test('a versions directory that cannot be created refuses the start', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'p.pol'), BASE_POLICY);
  writeFileSync(join(dir, 'file'), '');
  const err = await startPdp({
    policyPath: join(dir, 'p.pol'),
    socketPath: join(dir, 'pdp.sock'),
    versionsDir: join(dir, 'file', 'versions'),
    log: () => {},
  }).catch((e: unknown) => e);
  t.ok(isPcxError(err));
  t.match(err, { code: 'PCX_PDP_VERSION_STORE', message: /cannot keep policy versions in .*ENOTDIR/ });
});

t.test('a kept file is read back only if it hashes to its name', async (t) => {
  const versions = join(tempDir(t), 'versions');
  const { pdp } = await startTestPdp(t, { versionsDir: versions });
  const v = pdp.health().policy_version!;
  const file = join(versions, `${v.slice(7)}.json`);
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  for (const [what, text] of [
    ['its text edited', JSON.stringify({ ...doc, files: [{ name: 'policy.pol', text: V2 }] })],
    ['a file renamed', JSON.stringify({ ...doc, files: [{ name: 'other.pol', text: BASE_POLICY }] })],
    ['not JSON', '{'],
    ['the wrong shape', '{"files": [1]}'],
  ] as const) {
    writeFileSync(file, text);
    await t.rejects(loadVersion(versions, v), { code: 'PCX_PDP_VERSION_CORRUPT' }, what);
  }
  await t.rejects(loadVersion(versions, `sha256:${'0'.repeat(64)}`), {
    code: 'PCX_PDP_VERSION_MISSING',
    message: /is not kept in/,
  });
  await t.rejects(loadVersion(versions, '../../etc/passwd'), {
    code: 'PCX_PDP_VERSION_MISSING',
    message: /is not a policy version/,
  });
});
