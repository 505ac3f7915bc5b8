// The PDP as a real process: the `portcullis` bin (built dist/), real Unix sockets, real
// signals. Needs a build first (npm test does it). Every spawned process is killed at teardown.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PdpClient, type Decision, type DecisionRequest } from '@portcullis/protocol';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages', 'cli', 'bin', 'portcullis.js');

const POLICY_A =
  `policy "a" {\n  allow net.connect when resource.host == "ok.example"\n  deny net.connect when ` +
  `resource.host == "evil.example"\n}\n`;
const POLICY_B = `policy "b" {\n  deny net.connect when resource.host == "ok.example"\n}\n`;

const req = (host: string, extra: Partial<DecisionRequest> = {}): DecisionRequest => ({
  principal: { id: 'agent-7' },
  action: 'net.connect',
  resource: { host, port: 443 },
  ...extra,
});

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-e2e-pdp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Proc {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

function run(t: Test, args: string[], cwd: string): Proc {
  const child = spawn(process.execPath, [bin, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, stderr: () => err, exited };
}

async function startPdp(t: Test, dir: string, extra: string[] = []): Promise<Proc> {
  const p = run(t, ['pdp', '--policy', join(dir, 'policy.pol'), '--socket', join(dir, 'pdp.sock'), ...extra], dir);
  const deadline = Date.now() + 15_000;
  while (!p.stderr().includes('listening on')) {
    if (p.child.exitCode !== null || Date.now() > deadline) throw new Error(`pdp did not start:\n${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return p;
}

async function cli(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  return { code, stdout, stderr };
}

t.test('leases issued with the CLI are honoured by the daemon; the token never reaches its output', async (t) => {
  const dir = tempDir(t);
  t.equal((await cli(['lease', 'keygen', '--out', '.', '--issuer', 'approvals'], dir)).code, 0);
  // The ceiling names the key's issuer: leases from it may grant net.connect for up to an hour.
  writeFileSync(join(dir, 'policy.pol'), `${POLICY_A}leases from "approvals" max 1h {\n  allow net.connect\n}\n`);
  t.equal(statSync(join(dir, 'lease-signing.jwk')).mode & 0o777, 0o600, 'private key mode 0600');
  const issued = await cli(
    [
      'lease',
      'issue',
      '--key',
      'lease-signing.jwk',
      '--sub',
      'agent-7',
      '--audience',
      'pcx-e2e',
      '--session',
      's-1',
      '--ttl',
      '10m',
      '--grant',
      'allow net.connect when resource.host == "lease.example"',
    ],
    dir,
  );
  t.equal(issued.code, 0, issued.stderr);
  const token = issued.stdout.trim();
  const jti = /lease (\S+) for agent-7/.exec(issued.stderr)?.[1];
  t.ok(jti, 'the jti is reported on stderr');
  t.notOk(issued.stderr.includes(token), 'the token is only on stdout');
  const refused = await cli(
    [
      'lease',
      'issue',
      '--key',
      'lease-signing.jwk',
      '--sub',
      'a',
      '--audience',
      'pcx-e2e',
      '--ttl',
      '10m',
      '--grant',
      'allow net.connect when resource.nosuch == 1',
    ],
    dir,
  );
  t.equal(refused.code, 2, 'an invalid grant is refused before signing');
  t.equal(refused.stdout, '');
  t.notMatch(refused.stderr, /^\s+at /m, 'no stack trace');

  const pdp = await startPdp(t, dir, ['--lease-keys', join(dir, 'lease-keys.jwks'), '--lease-audience', 'pcx-e2e']);
  t.equal(statSync(join(dir, 'pdp.sock')).mode & 0o777, 0o660, 'socket mode 0660');
  const client = new PdpClient({ socketPath: join(dir, 'pdp.sock'), timeoutMs: 2000 });
  t.teardown(() => client.close());
  t.equal((await client.decide(req('lease.example'))).decision, 'deny');
  const granted = await client.decide(req('lease.example', { context: { session: 's-1', leases: [token] } }));
  t.equal(granted.decision, 'allow');
  t.match(granted.reasons, [{ lease: jti }]);
  const wrong = await client.decide(req('lease.example', { context: { session: 's-2', leases: [token] } }));
  t.match(wrong.reasons, [{ lease: jti, ignored: 'wrong_session', detail: /"s-1", but the request has "s-2"/ }]);
  pdp.child.kill('SIGTERM');
  t.equal(await pdp.exited, 0);
  t.notOk(pdp.stderr().includes(token), 'the daemon never printed the token');
});

t.test(
  'kill -9 while clients are calling: they deny (failure, not policy), then recover when it is back',
  async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'policy.pol'), POLICY_A);
    const socketPath = join(dir, 'pdp.sock');
    let pdp = await startPdp(t, dir);
    const client = new PdpClient({ socketPath, connections: 4, timeoutMs: 250 });
    t.teardown(() => client.close());
    const results: Decision[] = [];
    let rejected = 0;
    let stop = false;
    const callers = Array.from({ length: 16 }, async () => {
      while (!stop) {
        await client.decide(req('ok.example')).then(
          (d) => results.push(d),
          () => rejected++,
        );
        if (results.length % 64 === 0) await new Promise((r) => setImmediate(r));
      }
    });
    const waitFor = async (pred: () => boolean, ms = 10_000) => {
      const deadline = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error('timed out');
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await waitFor(() => results.some((d) => d.decision === 'allow'));
    pdp.child.kill('SIGKILL');
    await pdp.exited;
    const killedAt = results.length;
    await waitFor(() => results.slice(killedAt).filter((d) => d.error).length >= 50);
    t.ok(existsSync(socketPath), 'the crash left a stale socket file');
    pdp = await startPdp(t, dir);
    const restartedAt = results.length;
    await waitFor(() => results.slice(restartedAt).some((d) => d.decision === 'allow'));
    stop = true;
    await Promise.all(callers);
    t.equal(rejected, 0, 'decide never rejected');
    const failures = results.filter((d) => d.error);
    t.ok(failures.length >= 50, `${failures.length} calls failed while the PDP was down`);
    t.ok(
      failures.every(
        (d) =>
          d.decision === 'deny' &&
          ['PCX_PDP_UNAVAILABLE', 'PCX_PDP_TIMEOUT'].includes(d.error!.code) &&
          d.reasons[0]?.error?.code === d.error!.code,
      ),
      'every failure is a deny whose reason is the failure',
    );
    t.ok(
      results.every((d) => d.decision === 'allow' || d.error),
      'nothing but allows and failure-denies',
    );
    t.ok(
      results.slice(restartedAt).some((d) => d.decision === 'allow' && !d.error),
      'recovered after the restart',
    );
    pdp.child.kill('SIGTERM');
    t.equal(await pdp.exited, 0);
  },
);

t.test('SIGTERM drains: every request already sent is answered, then the process exits 0', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'policy.pol'), POLICY_A);
  const socketPath = join(dir, 'pdp.sock');
  const pdp = await startPdp(t, dir);
  const sock = createConnection({ path: socketPath });
  await new Promise((r) => sock.once('connect', r));
  let answers = 0;
  let buf = '';
  const ids = new Set<number>();
  sock.setEncoding('utf8').on('data', (s: string) => {
    buf += s;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const f = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      if (f.decision === 'allow') ids.add(f.id);
      answers++;
    }
  });
  const closed = new Promise((r) => sock.on('close', r));
  // One round trip first, so the daemon has accepted this connection before the signal.
  sock.write('{"id":-1,"health":true}\n');
  while (answers < 1) await new Promise((r) => setTimeout(r, 5));
  answers = 0;
  const N = 20_000;
  let out = '';
  for (let i = 0; i < N; i++) out += JSON.stringify({ id: i, request: req('ok.example') }) + '\n';
  sock.write(out);
  pdp.child.kill('SIGTERM');
  t.equal(await pdp.exited, 0);
  await closed;
  t.equal(answers, N, 'every request answered');
  t.equal(ids.size, N, 'each one, once, allowed');
  t.match(pdp.stderr(), /SIGTERM: draining/);
  t.notOk(existsSync(socketPath), 'the socket file is removed');
});

t.test('reload under load: no failed decision, and every answer is the decision of the version it names', async (t) => {
  const dir = tempDir(t);
  const policyPath = join(dir, 'policy.pol');
  writeFileSync(policyPath, POLICY_A);
  const socketPath = join(dir, 'pdp.sock');
  const pdp = await startPdp(t, dir);
  const client = new PdpClient({ socketPath, connections: 4, timeoutMs: 2000 });
  t.teardown(() => client.close());
  // Atomic replacement (write a temporary file, rename it over), as editors and the kubelet
  // do: a reader never sees a half-written file.
  const replace = (text: string) => {
    writeFileSync(policyPath + '.tmp', text);
    renameSync(policyPath + '.tmp', policyPath);
  };
  // Wait (bounded) until the daemon serves a version other than `other`: each swap is then
  // known to have happened while the callers below are running, however loaded the machine is.
  const versionAfter = async (text: string, other?: string) => {
    replace(text);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const h = await client.health();
      if (h.policy_version && h.policy_version !== other) return h.policy_version;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('the daemon did not pick up the new policy within 10 s');
  };
  const vA = (await client.health()).policy_version!;
  const vB = await versionAfter(POLICY_B, vA);
  await versionAfter(POLICY_A, vB);
  const expected: Record<string, string> = { [vA]: 'allow', [vB]: 'deny' };

  const results: Decision[] = [];
  let stop = false;
  const callers = Array.from({ length: 32 }, async () => {
    while (!stop) results.push(await client.decide(req('ok.example')));
  });
  for (let i = 0; i < 10; i++) {
    await versionAfter(POLICY_B, vA);
    await new Promise((r) => setTimeout(r, 20));
    await versionAfter(POLICY_A, vB);
    await new Promise((r) => setTimeout(r, 20));
  }
  stop = true;
  await Promise.all(callers);
  t.ok(results.length > 200, `${results.length} decisions during 20 reloads`);
  t.equal(results.filter((d) => d.error).length, 0, 'no failed decision');
  const mismatched = results.filter((d) => expected[d.policy_version!] !== d.decision);
  t.equal(mismatched.length, 0, 'every decision matches the policy version it carries');
  t.ok(
    results.some((d) => d.policy_version === vA) && results.some((d) => d.policy_version === vB),
    'both versions served',
  );
  t.ok(
    results.every((d) => (d.decision === 'allow' ? d.reasons[0]?.policy === 'a' : d.reasons[0]?.policy === 'b')),
    'reasons come from the same set',
  );
  const reloads = (pdp.stderr().match(/loaded policy/g) ?? []).length;
  t.ok(reloads >= 20, `${reloads} reloads happened`);
  pdp.child.kill('SIGTERM');
  t.equal(await pdp.exited, 0);
});

t.test(
  'no valid policy at start: the daemon runs, denies everything and says why; usage errors exit 2 without a stack',
  async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'policy.pol'), 'policy "x" {\n  allow bogus.action\n}\n');
    const pdp = await startPdp(t, dir);
    t.match(pdp.stderr(), /policy reload failed/);
    const client = new PdpClient({ socketPath: join(dir, 'pdp.sock'), timeoutMs: 2000 });
    t.teardown(() => client.close());
    const d = await client.decide(req('ok.example'));
    t.equal(d.decision, 'deny');
    t.equal(d.error?.code, 'PCX_PDP_NO_POLICY');
    t.match(d.error?.message, /policy\.pol:2/);
    const h = await client.health();
    t.equal(h.status, 'no_policy');
    pdp.child.kill('SIGTERM');
    t.equal(await pdp.exited, 0);

    const inUse = await startPdp(t, dir);
    const second = await cli(['pdp', '--policy', 'policy.pol', '--socket', join(dir, 'pdp.sock')], dir);
    t.equal(second.code, 2);
    t.match(second.stderr, /another process is serving/);
    t.notMatch(second.stderr, /^\s+at /m);
    inUse.child.kill('SIGTERM');
    await inUse.exited;
    const bad = await cli(['pdp', '--policy', 'policy.pol', '--bogus'], dir);
    t.equal(bad.code, 2);
    t.notMatch(bad.stderr, /^\s+at /m);
    t.ok(readFileSync(join(dir, 'policy.pol'), 'utf8').length > 0);
  },
);
