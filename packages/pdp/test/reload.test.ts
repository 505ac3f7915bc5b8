// Hot reload: edits to a file, to a directory tree, and the Kubernetes ConfigMap symlink swap;
// a compile error keeps the last good set and shows in health.
import t from 'tap';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PdpClient } from '@portcullis/protocol';
import { BASE_POLICY, RawConn, eventually, health, request, startTestPdp, tempDir } from './helpers.js';

const OPEN = `policy "open" {\n  allow net.connect\n}\n`;

async function decide(socketPath: string, host: string) {
  const c = await RawConn.open(socketPath);
  try {
    c.write(JSON.stringify({ id: 1, request: request(host) }) + '\n');
    return await c.frame();
  } finally {
    c.close();
  }
}

const versionOf = async (socketPath: string) => (await health(socketPath)).policy_version as string | undefined;

t.test('editing the policy file swaps in the new set; the version follows the content', async (t) => {
  const { socketPath, policyPath } = await startTestPdp(t, { pollMs: 0 });
  const v1 = await versionOf(socketPath);
  t.equal((await decide(socketPath, 'other.example')).decision, 'deny');
  writeFileSync(policyPath, OPEN);
  const v2 = await eventually(async () => {
    const v = await versionOf(socketPath);
    return v !== v1 ? v : undefined;
  });
  t.match(v2, /^sha256:[0-9a-f]{64}$/);
  const d = await decide(socketPath, 'other.example');
  t.equal(d.decision, 'allow');
  t.equal(d.policy_version, v2, 'answers carry the new version');
});

t.test('a compile error keeps the last good set, logs the diagnostics and shows in health', async (t) => {
  const { socketPath, policyPath, logs } = await startTestPdp(t, { pollMs: 0 });
  const good = await versionOf(socketPath);
  writeFileSync(policyPath, 'policy "broken" {\n  allow net.connect when resource.nosuch == 1\n}\n');
  const h = await eventually(async () => {
    const x = await health(socketPath);
    return (x.last_reload as { ok: boolean }).ok === false ? x : undefined;
  });
  t.equal(h.status, 'ok');
  t.equal(h.policy_version, good, 'the last good set stays in force');
  t.equal(h.stale, true);
  t.match(h.last_reload, {
    ok: false,
    policy_version: good,
    error: { code: 'PCX_POLICY_COMPILE', message: /keeping sha256:/ },
  });
  t.match((h.last_reload as { diagnostics: string[] }).diagnostics.join('\n'), /policy\.pol:2/);
  t.ok(
    logs.some((l) => l.startsWith('error:') && l.includes('policy.pol:2')),
    'diagnostics logged',
  );
  const d = await decide(socketPath, 'ok.example');
  t.equal(d.decision, 'allow');
  t.equal(d.policy_version, good);
  writeFileSync(policyPath, OPEN);
  await eventually(async () => ((await health(socketPath)).stale === false ? true : undefined));
  t.equal((await decide(socketPath, 'other.example')).decision, 'allow');
});

t.test('a directory: adding, changing and removing files below it (nested too) reloads', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'pol', 'nested'), { recursive: true });
  writeFileSync(join(dir, 'pol', 'base.pol'), BASE_POLICY);
  const { socketPath } = await startTestPdp(t, { policyPath: join(dir, 'pol'), pollMs: 0 });
  t.equal((await decide(socketPath, 'other.example')).decision, 'deny');
  writeFileSync(
    join(dir, 'pol', 'nested', 'more.pol'),
    'policy "more" {\n  allow net.connect when resource.host == "other.example"\n}\n',
  );
  await eventually(async () => ((await decide(socketPath, 'other.example')).decision === 'allow' ? true : undefined));
  t.equal((await health(socketPath)).files, 2);
  rmSync(join(dir, 'pol', 'nested', 'more.pol'));
  await eventually(async () => ((await decide(socketPath, 'other.example')).decision === 'deny' ? true : undefined));
});

t.test('a Kubernetes ConfigMap volume: the ..data symlink swap reloads', async (t) => {
  // The kubelet's layout: files are symlinks through ..data, which points at a timestamped dir;
  // an update writes a new dir, points a temporary link at it and renames it over ..data.
  const vol = join(tempDir(t), 'policies');
  mkdirSync(join(vol, '..2024_01_01_00_00_00.1'), { recursive: true });
  writeFileSync(join(vol, '..2024_01_01_00_00_00.1', 'base.pol'), BASE_POLICY);
  symlinkSync('..2024_01_01_00_00_00.1', join(vol, '..data'));
  symlinkSync('..data/base.pol', join(vol, 'base.pol'));
  const { socketPath } = await startTestPdp(t, { policyPath: vol, pollMs: 0 });
  const v1 = await versionOf(socketPath);
  t.ok(v1);
  t.equal((await health(socketPath)).files, 1, 'the ..-prefixed entries are not loaded twice');
  t.equal((await decide(socketPath, 'other.example')).decision, 'deny');

  mkdirSync(join(vol, '..2024_01_01_00_01_00.2'));
  writeFileSync(join(vol, '..2024_01_01_00_01_00.2', 'base.pol'), OPEN);
  symlinkSync('..2024_01_01_00_01_00.2', join(vol, '..data_tmp'));
  renameSync(join(vol, '..data_tmp'), join(vol, '..data'));
  rmSync(join(vol, '..2024_01_01_00_00_00.1'), { recursive: true });
  await eventually(async () => ((await decide(socketPath, 'other.example')).decision === 'allow' ? true : undefined));
  t.not(await versionOf(socketPath), v1);
});

t.test('a single policy file that is itself a ConfigMap symlink is followed across swaps', async (t) => {
  const vol = join(tempDir(t), 'cm');
  mkdirSync(join(vol, '..v1'), { recursive: true });
  writeFileSync(join(vol, '..v1', 'p.pol'), BASE_POLICY);
  symlinkSync('..v1', join(vol, '..data'));
  symlinkSync('..data/p.pol', join(vol, 'p.pol'));
  const { socketPath } = await startTestPdp(t, { policyPath: join(vol, 'p.pol'), pollMs: 0 });
  t.equal((await decide(socketPath, 'other.example')).decision, 'deny');
  mkdirSync(join(vol, '..v2'));
  writeFileSync(join(vol, '..v2', 'p.pol'), OPEN);
  symlinkSync('..v2', join(vol, '..tmp'));
  renameSync(join(vol, '..tmp'), join(vol, '..data'));
  rmSync(join(vol, '..v1'), { recursive: true });
  await eventually(async () => ((await decide(socketPath, 'other.example')).decision === 'allow' ? true : undefined));
});

t.test('reload() picks a change up at once', async (t) => {
  const { pdp, socketPath, policyPath } = await startTestPdp(t, { pollMs: 0 });
  const v1 = await versionOf(socketPath);
  writeFileSync(policyPath, OPEN);
  await pdp.reload();
  t.not(await versionOf(socketPath), v1);
  const h = await health(socketPath);
  t.match(h.last_reload, { ok: true });
});

t.test('files rewritten in place under load: never a half-written set, no failed decision', async (t) => {
  const { socketPath, policyPath } = await startTestPdp(t, { pollMs: 0 });
  const client = new PdpClient({ socketPath, connections: 2, timeoutMs: 5000 });
  t.teardown(() => client.close());
  const vBase = await versionOf(socketPath);
  writeFileSync(policyPath, OPEN);
  const vOpen = await eventually(async () => {
    const v = await versionOf(socketPath);
    return v !== vBase ? v : undefined;
  });
  const expected: Record<string, string> = { [vBase!]: 'deny', [vOpen]: 'allow' };
  const seen: Array<{ v: string | undefined; d: string; error: boolean }> = [];
  let stop = false;
  const callers = Array.from({ length: 8 }, async () => {
    while (!stop) {
      const d = await client.decide(request('other.example') as never);
      seen.push({ v: d.policy_version, d: d.decision, error: !!d.error });
    }
  });
  for (let i = 0; i < 16; i++) {
    writeFileSync(policyPath, i % 2 ? OPEN : BASE_POLICY); // truncate + write, not atomic
    await new Promise((r) => setTimeout(r, 40));
  }
  stop = true;
  await Promise.all(callers);
  t.equal(seen.filter((s) => s.error).length, 0, 'no failed decision');
  t.equal(seen.filter((s) => expected[s.v!] !== s.d).length, 0, 'only the two complete sets ever decided');
});
