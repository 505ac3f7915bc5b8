// One policy version means one policy, end to end with real processes (the `portcullis` bin,
// built dist/; npm test builds first): the version printed by `check` and served by the PDP is
// the same from two working directories and two copies of the policy root, and equals the
// value computed here from the recipe in dsl/LANGUAGE.md; the PDP keeps every version it served
// (content-addressed, in --versions-dir or its default under $XDG_STATE_HOME), and `audit replay`
// re-evaluates each record against the version named in it, reproducing decisions made under
// two versions exactly, while `--policy` still replays against a candidate. This test is the
// PEP: it asks the PDP with PdpClient and records through AuditClient, as enforcement points do.
import t, { type Test } from 'tap';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { AuditClient, PdpClient, type DecisionRequest } from '@portcullis/protocol';
import { cli, daemon } from './processes.js';

const NET = 'policy "net" {\n  allow net.connect when resource.host == "a.example"\n}\n';
const TEAM_V1 = 'policy "team" {\n  allow net.connect when resource.host == "b.example" because "v1 allows b"\n}\n';
const TEAM_V2 = 'policy "team" {\n  deny net.connect when resource.host == "b.example" because "v2 denies b"\n}\n';

/** The recipe of dsl/LANGUAGE.md, written out here: names relative to the root, UTF-8 byte order. */
function recipe(files: Record<string, string>): string {
  const h = createHash('sha256');
  const names = Object.keys(files).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const n of names) {
    const text = files[n]!;
    h.update(`${Buffer.byteLength(n)}:${n}\n${Buffer.byteLength(text)}:${text}\n`);
  }
  return `sha256:${h.digest('hex')}`;
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-e2e-version-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writePolicy(dir: string, team: string): void {
  mkdirSync(join(dir, 'team'), { recursive: true });
  writeFileSync(join(dir, 'net.pol'), NET);
  writeFileSync(join(dir, 'team', 'b.pol'), team);
}

/** Environment of every process here: its default state directory is inside the test's. */
const envWith = (state: string) => ({ ...process.env, XDG_STATE_HOME: state });

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function pdpVersion(t: Test, socketPath: string): Promise<string | undefined> {
  const c = new PdpClient({ socketPath, timeoutMs: 10_000 });
  t.teardown(() => c.close());
  return (await c.health()).policy_version;
}

t.test('the version is the same from two working directories and two copies, and follows the recipe', async (t) => {
  const dir = tempDir(t);
  const one = join(dir, 'one', 'policies');
  const two = join(dir, 'elsewhere', 'deeper', 'policies');
  writePolicy(one, TEAM_V1);
  cpSync(one, two, { recursive: true });
  const want = recipe({ 'net.pol': NET, 'team/b.pol': TEAM_V1 });
  const env = envWith(join(dir, 'state'));

  const fromAbove = await cli(['check', 'policies'], join(dir, 'one'), env);
  const fromInside = await cli(['check', two], join(two, 'team'), env);
  t.equal(fromAbove.code, 0, fromAbove.stderr);
  t.equal(fromInside.code, 0, fromInside.stderr);
  t.match(fromAbove.stdout, `(policy_version ${want})`);
  t.match(fromInside.stdout, `(policy_version ${want})`);

  // A single-file set is named by its base name.
  const single = await cli(['check', relative(dir, join(one, 'net.pol'))], dir, env);
  t.match(single.stdout, `(policy_version ${recipe({ 'net.pol': NET })})`);

  const a = join(dir, 'a.sock');
  const b = join(dir, 'b.sock');
  await daemon(t, ['pdp', '--policy', 'policies', '--socket', a], join(dir, 'one'), env);
  await daemon(t, ['pdp', '--policy', two, '--socket', b, '--versions-dir', join(dir, 'v2')], join(two, 'team'), env);
  t.equal(await pdpVersion(t, a), want, 'a PDP started above its root');
  t.equal(await pdpVersion(t, b), want, 'a PDP started inside another copy');
  // Each kept the version it served: the default directory under $XDG_STATE_HOME, and --versions-dir.
  const hex = want.slice('sha256:'.length);
  t.same(readdirSync(join(dir, 'state', 'portcullis', 'policy-versions')), [`${hex}.json`]);
  t.same(readdirSync(join(dir, 'v2')), [`${hex}.json`]);
});

const req = (host: string): DecisionRequest => ({
  principal: { id: 'agent-1' },
  action: 'net.connect',
  resource: { host, port: 443 },
});

t.test('serve v1, change the policy, serve v2: replay reproduces both decisions exactly', async (t) => {
  const dir = tempDir(t);
  const policies = join(dir, 'policies');
  writePolicy(policies, TEAM_V1);
  const versions = join(dir, 'versions');
  const env = envWith(join(dir, 'state'));
  const key = join(dir, 'audit.key');
  t.equal((await cli(['audit', 'keygen', '--name', 'version.test', '--out', key], dir, env)).code, 0);
  const log = join(dir, 'log');
  const pdpSock = join(dir, 'pdp.sock');
  const auditSock = join(dir, 'audit.sock');
  const pdp = await daemon(t, ['pdp', '--policy', policies, '--socket', pdpSock, '--versions-dir', versions], dir, env);
  const sink = await daemon(t, ['audit', 'serve', '--dir', log, '--socket', auditSock, '--key', key], dir, env);
  const client = new PdpClient({ socketPath: pdpSock, timeoutMs: 10_000 });
  const audit = new AuditClient({ socketPath: auditSock, timeoutMs: 10_000 });
  t.teardown(() => {
    client.close();
    audit.close();
  });
  const decideAndRecord = async (host: string) => {
    const d = await client.decide(req(host));
    await audit.append({
      source: 'test-pep',
      ...req(host),
      decision: d.decision,
      reasons: d.reasons,
      ...(d.policy_version ? { policy_version: d.policy_version } : {}),
    });
    return d;
  };

  const v1 = recipe({ 'net.pol': NET, 'team/b.pol': TEAM_V1 });
  const v2 = recipe({ 'net.pol': NET, 'team/b.pol': TEAM_V2 });
  const first = [await decideAndRecord('a.example'), await decideAndRecord('b.example')];
  t.same(
    first.map((d) => [d.decision, d.policy_version]),
    [
      ['allow', v1],
      ['allow', v1],
    ],
  );
  writeFileSync(join(policies, 'team', 'b.pol'), TEAM_V2);
  const deadline = Date.now() + 20_000;
  while ((await client.health()).policy_version !== v2) {
    if (Date.now() > deadline) throw new Error('the PDP did not load v2');
    await new Promise((r) => setTimeout(r, 50));
  }
  const second = [await decideAndRecord('a.example'), await decideAndRecord('b.example')];
  t.same(
    second.map((d) => [d.decision, d.policy_version]),
    [
      ['allow', v2],
      ['deny', v2],
    ],
  );
  // A record no policy decided (a PEP's own refusal) carries no version: counted, not replayed.
  await audit.append({ source: 'test-pep', ...req('c.example'), decision: 'deny', reasons: [] });
  await stop(sink);
  await stop(pdp);

  // Default: each record against the version that made it — both decisions reproduced, reasons too.
  const exact = await cli(['audit', 'replay', log, '--versions-dir', versions, '--json'], dir, env);
  t.equal(exact.code, 0, exact.stderr);
  const r = JSON.parse(exact.stdout) as {
    versions: string[];
    total: number;
    differences: unknown[];
    unreplayed: number;
  };
  t.same(r, { versions: [v1, v2], total: 5, differences: [], unreplayed: 1 });
  const text = await cli(['audit', 'replay', log, '--versions-dir', versions], dir, env);
  t.match(text.stdout, /^0 of 5 decisions differ .*\(2 versions; 1 records were decided by no policy/m);

  // --policy: the current set (v2) as a candidate — the v1 "allow b.example" would now be denied.
  const candidate = await cli(['audit', 'replay', log, '--policy', policies, '--json'], dir, env);
  t.equal(candidate.code, 1);
  const c = JSON.parse(candidate.stdout) as { policy_version: string; differences: Array<Record<string, unknown>> };
  t.equal(c.policy_version, v2);
  t.match(c.differences, [{ seq: 1, recorded: 'allow', replayed: 'deny' }]);
  t.equal(c.differences.length, 1);

  // Evaluating against v2 instead of v1 would differ: edit the kept v1 to say v2's rule and the
  // replay refuses it (the file no longer hashes to its name) instead of replaying the wrong set.
  const v1file = join(versions, `${v1.slice('sha256:'.length)}.json`);
  const kept = JSON.parse(readFileSync(v1file, 'utf8')) as { files: Array<{ name: string; text: string }> };
  t.same(kept.files, [
    { name: 'net.pol', text: NET },
    { name: 'team/b.pol', text: TEAM_V1 },
  ]);
  writeFileSync(v1file, JSON.stringify({ ...kept, files: [kept.files[0], { name: 'team/b.pol', text: TEAM_V2 }] }));
  const tampered = await cli(['audit', 'replay', log, '--versions-dir', versions], dir, env);
  t.equal(tampered.code, 2);
  t.match(tampered.stderr, /PCX_PDP_VERSION_CORRUPT|does not hold policy sha256:/);
  t.notMatch(tampered.stderr, /\n\s+at /, 'no stack trace');

  // The default directory ($XDG_STATE_HOME here) holds nothing: the versions are elsewhere, and replay says so.
  const missing = await cli(['audit', 'replay', log], dir, env);
  t.equal(missing.code, 2);
  t.match(missing.stderr, new RegExp(`policy ${v1} is not kept in .*state/portcullis/policy-versions`));
  t.match(missing.stderr, /--versions-dir|--policy/);
});
