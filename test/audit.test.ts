// The audit sink as a real, separate process: the `portcullis` command run from source
// (node --conditions=portcullis-source --import tsx, so no build is needed), real Unix sockets,
// real signals (kill -9), a real full disk (a 64 KiB tmpfs; see the fallback below).
// Every process started here is killed at teardown and every mount is unmounted.
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough, Readable } from 'node:stream';
import { AuditClient, type AuditRecordInput, type PcxError } from '@portcullis/protocol';
import { main } from '@portcullis/cli';
import { swapRecords } from '../packages/audit/test/rewrite.js';
import { missingTools } from './helpers/tools.js';

type TestT = Parameters<Parameters<typeof t.test>[0]>[0];

const here = dirname(fileURLToPath(import.meta.url));
const CLI = "import { main } from '@portcullis/cli'; process.exitCode = await main(process.argv.slice(1));";
const nodeArgs = ['--conditions=portcullis-source', '--import', 'tsx', '--input-type=module', '-e', CLI, '--'];

function tempDir(t: TestT): string {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-e2e-audit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Proc {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

function run(t: TestT, args: string[], prefix: string[] = []): Proc {
  const [cmd, ...pre] = prefix.length ? prefix : [process.execPath];
  const child = spawn(cmd!, [...pre, ...(prefix.length ? [process.execPath] : []), ...nodeArgs, ...args], {
    cwd: here,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, out: () => out, err: () => err, exited };
}

/**
 * One-shot commands (keygen, verify, prove, query, …) run in-process through the same `main` the
 * bin calls, to keep this file fast (each spawn costs ~1 s of TypeScript loading); the daemon and
 * everything about processes (kill -9, locks, exit codes of serve) use real processes.
 */
async function cli(
  _t: TestT,
  args: string[],
  stdin?: string,
): Promise<{ code: number | null; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (c: Buffer) => (o += c.toString()));
  err.on('data', (c: Buffer) => (e += c.toString()));
  const code = await main(args, {
    stdout: out,
    stderr: err,
    stdin: Readable.from([Buffer.from(stdin ?? '')]),
    cwd: here,
  });
  return { code, out: o, err: e };
}

async function serve(
  t: TestT,
  dir: string,
  socket: string,
  key: string,
  extra: string[] = [],
  prefix: string[] = [],
): Promise<Proc> {
  const p = run(t, ['audit', 'serve', '--dir', dir, '--socket', socket, '--key', key, ...extra], prefix);
  const deadline = Date.now() + 20_000;
  while (!p.err().includes('"msg":"listening on ')) {
    if (p.child.exitCode !== null) throw new Error(`sink exited ${p.child.exitCode}: ${p.err()}`);
    if (Date.now() > deadline) throw new Error(`sink did not start: ${p.err()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return p;
}

const rec = (i: number): AuditRecordInput => ({
  source: 'egress',
  event_id: `e${i}`,
  principal: { id: `agent-${i % 3}` },
  action: i % 2 ? 'http.get' : 'http.post',
  resource: { host: 'api.example.com', path: `/x/${i}`, pad: 'x'.repeat(200) },
  decision: i % 4 ? 'allow' : 'deny',
  reasons: [{ rule: 'r' }],
});

const logLines = (dir: string): string[] =>
  readdirSync(join(dir, 'segments'))
    .sort()
    .flatMap((f) =>
      readFileSync(join(dir, 'segments', f), 'utf8')
        .split('\n')
        .filter((l) => l.length > 0),
    );

async function keygen(t: TestT, dir: string): Promise<{ key: string; pub: string }> {
  const key = join(dir, 'audit.key');
  const r = await cli(t, ['audit', 'keygen', '--name', 'e2e.audit', '--out', key]);
  t.equal(r.code, 0, r.err);
  return { key, pub: `${key}.pub` };
}

t.test('keygen: private key 0600, public key in verifier-key format, never overwrites', async (t) => {
  const dir = tempDir(t);
  const { key, pub } = await keygen(t, dir);
  t.equal(statSync(key).mode & 0o777, 0o600);
  t.match(readFileSync(pub, 'utf8'), /^e2e\.audit\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}\n$/);
  const again = await cli(t, ['audit', 'keygen', '--name', 'e2e.audit', '--out', key]);
  t.equal(again.code, 2);
  t.match(again.err, /already exists; refusing to overwrite/);
  t.notMatch(again.err, /\n\s+at /, 'no stack trace');
  // serve refuses a private key that others can read, and never prints the key.
  chmodSync(key, 0o644);
  const loose = await cli(t, [
    'audit',
    'serve',
    '--dir',
    join(dir, 'log'),
    '--socket',
    join(dir, 's.sock'),
    '--key',
    key,
  ]);
  t.equal(loose.code, 2);
  t.match(loose.err, /readable by other users[\s\S]*chmod 600/);
  t.notOk(
    loose.err.includes(readFileSync(key, 'utf8').trim().split('+').slice(4).join('+')),
    'the key is not in the message',
  );
});

t.test(
  'kill -9 in the middle of a heavy write stream: every acked record survives, the tail is repaired, the chain goes on',
  async (t) => {
    const dir = tempDir(t);
    const { key, pub } = await keygen(t, dir);
    const log = join(dir, 'log');
    const socket = join(dir, 'sink.sock');
    const sink = await serve(t, log, socket, key, ['--checkpoint-every', '500']);
    const client = new AuditClient({ socketPath: socket, connections: 4, timeoutMs: 20_000 });
    const acked = new Map<number, string>();
    let failures = 0;
    let killed = false;
    let i = 0;
    // 8 producers, each with 16 appends in flight, until the sink dies under them.
    const producer = async (): Promise<void> => {
      while (!killed) {
        const batch = Array.from({ length: 16 }, () =>
          client.append(rec(i++)).then(
            (a) => void acked.set(a.seq, a.hash),
            () => void failures++,
          ),
        );
        await Promise.all(batch);
        if (failures > 0) return;
      }
    };
    const producers = Array.from({ length: 8 }, producer);
    const deadline = Date.now() + 60_000;
    while (acked.size < 3000 && failures === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    t.equal(failures, 0, 'no append failed before the kill');
    // Freeze the sink mid-stream and send a few more, so that some are surely in flight when the
    // kill lands (the producers' batches may all have been acked already: the sink is fast).
    sink.child.kill('SIGSTOP');
    const last = Array.from({ length: 16 }, () =>
      client.append(rec(i++)).then(
        (a) => void acked.set(a.seq, a.hash),
        () => void failures++,
      ),
    );
    await new Promise((r) => setTimeout(r, 20));
    sink.child.kill('SIGKILL');
    killed = true;
    await sink.exited;
    await Promise.all([...producers, ...last]);
    client.close();
    t.ok(failures > 0, 'records in flight at the kill were refused (so their PEPs deny)');
    t.ok(acked.size >= 3000, `${acked.size} records acked before the kill`);
    // Simulate the torn write a crash can leave (a kill -9 between two write() calls of a batch
    // cannot, since a batch is one write; a power loss or a full page can): the sink must cut it.
    appendFileSync(
      join(log, 'segments', readdirSync(join(log, 'segments')).sort().at(-1)!),
      '{"action":"http.get","cont',
    );

    const sink2 = await serve(t, log, socket, key);
    t.match(sink2.err(), /repaired a torn last line/);
    const before = logLines(log).length;
    const c2 = new AuditClient({ socketPath: socket, timeoutMs: 20_000 });
    const next = await c2.append(rec(-1));
    t.equal(next.seq, before, 'the chain goes on at the next seq');
    c2.close();
    sink2.child.kill('SIGTERM');
    t.equal(await sink2.exited, 0, 'SIGTERM stops the sink cleanly');

    const lines = logLines(log);
    let missing = 0;
    for (const [seq, hash] of acked) if (JSON.parse(lines[seq]!).hash !== hash) missing++;
    t.equal(missing, 0, 'every acknowledged record is in the log with the acked hash');
    const v = await cli(t, ['audit', 'verify', log, '--pubkey', pub]);
    t.equal(v.code, 0, v.out + v.err);
    t.match(v.out, new RegExp(`ok: ${lines.length} records`));
  },
);

t.test(
  'CLI verify, prove, verify-proof, query and tail on a real log; verify reports the first bad record',
  async (t) => {
    const dir = tempDir(t);
    const { key, pub } = await keygen(t, dir);
    const log = join(dir, 'log');
    const socket = join(dir, 'sink.sock');
    const sink = await serve(t, log, socket, key, ['--durable', '--checkpoint-every', '20']);
    const client = new AuditClient({ socketPath: socket, timeoutMs: 20_000 });
    for (let i = 0; i < 45; i++) await client.append(rec(i));
    client.close();
    sink.child.kill('SIGTERM');
    await sink.exited;

    const proof = await cli(t, ['audit', 'prove', log, '--seq', '13', '--pubkey', pub]);
    t.equal(proof.code, 0, proof.err);
    const origin = readFileSync(join(log, 'origin'), 'utf8').slice(0, -1);
    const ok = await cli(t, ['audit', 'verify-proof', '--pubkey', pub, '--origin', origin], proof.out);
    t.equal(ok.code, 0, ok.out + ok.err);
    t.equal(ok.out, `ok: record 13 is included in the log "${origin}" of 45 records signed by e2e.audit\n`);
    const forged = JSON.parse(proof.out) as { record: string };
    forged.record = forged.record.replace('"http.get"', '"http.post"');
    const bad = await cli(t, ['audit', 'verify-proof', '--pubkey', pub, '--origin', origin], JSON.stringify(forged));
    t.equal(bad.code, 1);
    t.match(bad.out, /FAIL/);
    // A proof is checked against the log it must come from: another origin fails, none is a usage error.
    const other = await cli(t, ['audit', 'verify-proof', '--pubkey', pub, '--origin', 'elsewhere/log'], proof.out);
    t.equal(other.code, 1);
    t.match(other.out, /FAIL: the proof is from the log ".*", not from "elsewhere\/log"/);
    const none = await cli(t, ['audit', 'verify-proof', '--pubkey', pub], proof.out);
    t.equal(none.code, 2);
    t.match(none.err, /missing --origin ORIGIN/);

    const q = await cli(t, ['audit', 'query', log, '--principal', 'agent-1', '--decision', 'deny']);
    t.equal(q.code, 0, q.err);
    const got = q.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number });
    t.same(
      got.map((r) => r.seq),
      Array.from({ length: 45 }, (_, i) => i).filter((i) => i % 3 === 1 && i % 4 === 0),
    );
    const badQ = await cli(t, ['audit', 'query', log, '--since', 'last tuesday']);
    t.equal(badQ.code, 2);
    t.match(badQ.err, /--since "last tuesday" is not a date-time/);

    const tail = await cli(t, ['audit', 'tail', log, '-n', '3']);
    t.same(
      tail.out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).seq),
      [42, 43, 44],
    );

    const lines = logLines(log);
    lines[30] = lines[30]!.replace('"deny"', '"allow"').replace('"allow"', '"deny"');
    writeFileSync(join(log, 'segments', '000001.log'), lines.join('\n') + '\n');
    const v = await cli(t, ['audit', 'verify', log, '--pubkey', pub]);
    t.equal(v.code, 1);
    t.match(v.out, /FAIL seq 30 \(segments\/000001\.log:31\): record 30: hash does not match/);

    const nolog = await cli(t, ['audit', 'verify', join(dir, 'nothing-here')]);
    t.equal(nolog.code, 2);
    t.notMatch(nolog.err, /\n\s+at /);
  },
);

t.test(
  'a restarted sink refuses to sign over rewritten history (exit 2); verify --against a kept checkpoint catches it',
  async (t) => {
    const dir = tempDir(t);
    const { key, pub } = await keygen(t, dir);
    const log = join(dir, 'log');
    const socket = join(dir, 'sink.sock');
    const sink = await serve(t, log, socket, key, ['--checkpoint-every', '8']);
    const client = new AuditClient({ socketPath: socket, timeoutMs: 20_000 });
    for (let i = 0; i < 19; i++) await client.append(rec(i));
    // Member names chosen by the caller, as JSON.parse makes them (own "__proto__" members).
    const resource = JSON.parse('{"__proto__":{"path":"/etc/shadow"},"constructor":{"a":1},"prototype":2}');
    const hostile = await client.append({ ...rec(19), resource, context: JSON.parse('{"__proto__":{"x":1}}') });
    client.close();
    sink.child.kill('SIGTERM');
    t.equal(await sink.exited, 0);
    const line = logLines(log)[19]!;
    t.match(line, `"hash":"${hostile.hash}"`, 'the acknowledged record');
    t.match(line, '"context":{"__proto__":{"x":1}}');
    t.match(line, '"resource":{"__proto__":{"path":"/etc/shadow"},"constructor":{"a":1},"prototype":2}');
    // The operator keeps a copy of the latest checkpoint off the machine.
    const kept = join(dir, 'kept-20.note');
    writeFileSync(kept, readFileSync(join(log, 'checkpoints', '0000000000000020.note')));
    const keptOk = await cli(t, ['audit', 'verify', log, '--pubkey', pub, '--against', kept]);
    t.equal(keptOk.code, 0, keptOk.out + keptOk.err);
    t.match(keptOk.out, /1 kept checkpoint\(s\) match/);

    swapRecords(log, 5, 6);
    const restarted = run(t, ['audit', 'serve', '--dir', log, '--socket', socket, '--key', key]);
    // Fails fast, not by the tap timeout, if it serves after all.
    const served = (async () => {
      while (!restarted.out().includes('listening')) {
        if (restarted.child.exitCode !== null) return 'exited';
        await new Promise((r) => setTimeout(r, 25));
      }
      restarted.child.kill('SIGKILL');
      return 'served';
    })();
    t.equal(await Promise.race([restarted.exited, served]), 2, 'the sink refuses to serve');
    t.match(
      restarted.err(),
      /records 0\.\.19 of the log .* do not hash to the root that its checkpoint checkpoints\/0+20\.note signed/,
    );
    t.match(restarted.err(), /the history was rewritten .*; the sink will not sign over it\n {2}hint: run "portcullis/);
    t.notMatch(restarted.err(), /\n\s+at /, 'no stack trace');
    t.notMatch(restarted.out(), /listening/);
    t.same(readdirSync(join(log, 'checkpoints')).filter((f) => f.endsWith('.note')).length, 3, 'nothing new signed');

    // Deleting every checkpoint hides the rewrite from the log alone (the sink then starts and
    // signs it: the documented limit); only the kept checkpoint still shows it.
    rmSync(join(log, 'checkpoints'), { recursive: true });
    mkdirSync(join(log, 'checkpoints'));
    const alone = await cli(t, ['audit', 'verify', log, '--pubkey', pub]);
    t.equal(alone.code, 0, alone.out);
    const against = await cli(t, ['audit', 'verify', log, '--pubkey', pub, '--against', kept]);
    t.equal(against.code, 1);
    t.match(against.out, /FAIL \(kept checkpoint .*kept-20\.note\): signed root does not match records 0\.\.19/);
  },
);

t.test('a second sink on the same log refuses to start', async (t) => {
  const dir = tempDir(t);
  const { key } = await keygen(t, dir);
  const log = join(dir, 'log');
  await serve(t, log, join(dir, 'a.sock'), key);
  const second = run(t, ['audit', 'serve', '--dir', log, '--socket', join(dir, 'b.sock'), '--key', key]);
  t.equal(await second.exited, 2);
  t.match(second.err(), /another audit sink \(pid \d+\) is writing/);
});

// Full disk: a 64 KiB tmpfs. If this sandbox refuses mount, the same sink runs under
// RLIMIT_FSIZE (prlimit), where write() fails with EFBIG at the limit: the same code path.
function mountTmpfs(dir: string): boolean {
  mkdirSync(dir, { recursive: true });
  return spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]).status === 0;
}

t.test('full disk: the sink refuses, the client sees it (the PEP denies), nothing acked is lost', async (t) => {
  const dir = tempDir(t);
  const { key, pub } = await keygen(t, dir);
  const mnt = join(dir, 'mnt');
  const mounted = mountTmpfs(mnt);
  if (mounted) t.teardown(() => void spawnSync('umount', ['-l', mnt]));
  const noLimit = mounted ? undefined : missingTools('prlimit');
  if (noLimit) return t.plan(0, `mount refused and ${noLimit}`);
  t.comment(mounted ? 'using a 64 KiB tmpfs' : 'mount refused: using RLIMIT_FSIZE=64 KiB via prlimit');
  const log = join(mnt, 'log');
  const socket = join(dir, 'sink.sock');
  // Ballast that is removed later, to show the sink takes records again once there is room.
  if (mounted) writeFileSync(join(mnt, 'ballast'), Buffer.alloc(16 * 1024));
  const sink = await serve(
    t,
    log,
    socket,
    key,
    ['--checkpoint-every', '1000000'],
    mounted ? [] : ['prlimit', '--fsize=65536'],
  );
  const client = new AuditClient({ socketPath: socket, timeoutMs: 20_000 });
  const acked = new Map<number, string>();
  let refusal: PcxError | undefined;
  for (let i = 0; i < 2000 && !refusal; i++) {
    try {
      const a = await client.append(rec(i));
      acked.set(a.seq, a.hash);
    } catch (e) {
      refusal = e as PcxError;
    }
  }
  t.ok(refusal, `refused after ${acked.size} records`);
  t.equal(refusal?.code, 'PCX_AUDIT_WRITE_FAILED');
  t.match(refusal?.message, mounted ? /the disk is full/ : /file size limit/);
  t.same((await client.health()).writable, false, 'health says the sink cannot write');
  await t.rejects(client.append(rec(1)), { code: 'PCX_AUDIT_WRITE_FAILED' }, 'still refusing, still alive');
  if (mounted) {
    rmSync(join(mnt, 'ballast'));
    const a = await client.append(rec(2));
    t.equal(a.seq, acked.size, 'with room again, the next record continues the chain');
    acked.set(a.seq, a.hash);
    t.same((await client.health()).writable, true);
  }
  client.close();
  sink.child.kill('SIGTERM');
  t.equal(await sink.exited, 0);
  const lines = logLines(log);
  t.equal(lines.length, acked.size, 'the failed batch was cut off: the log ends on a record boundary');
  for (const [seq, hash] of acked) t.equal(JSON.parse(lines[seq]!).hash, hash, `acked record ${seq}`);
  const v = await cli(t, ['audit', 'verify', log, '--pubkey', pub]);
  t.equal(v.code, 0, v.out + v.err);
});

t.test('an unwritable log directory: the sink refuses to start and says why', async (t) => {
  const dir = tempDir(t);
  const { key } = await keygen(t, dir);
  const mnt = join(dir, 'ro');
  mkdirSync(mnt);
  // Root ignores file modes, so read-only means a read-only mount here.
  const ro = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,ro', 'tmpfs', mnt]).status === 0;
  if (ro) t.teardown(() => void spawnSync('umount', ['-l', mnt]));
  const target = ro ? mnt : join(dir, 'not-a-dir', 'log');
  if (!ro) writeFileSync(join(dir, 'not-a-dir'), 'a file where the directory should be');
  const p = run(t, ['audit', 'serve', '--dir', target, '--socket', join(dir, 's.sock'), '--key', key]);
  t.equal(await p.exited, 2);
  t.match(p.err(), /PCX|cannot create the audit directory/);
  t.match(p.err(), ro ? /EROFS/ : /ENOTDIR|EEXIST/);
  t.notMatch(p.err(), /\n\s+at /, 'no stack trace');
});

t.test('replay: re-evaluates recorded requests against another policy set and lists what would differ', async (t) => {
  const { AuditLog, parseSigningKey, generateKey } = await import('@portcullis/audit');
  const dir = tempDir(t);
  const log = join(dir, 'log');
  const w = await AuditLog.open({ dir: log, key: await parseSigningKey((await generateKey('replay')).privateKey) });
  // Decisions as policy A made them.
  const hosts = ['ok.example', 'evil.example', 'other.example', 'ok.example'];
  const decided = { 'ok.example': 'allow', 'evil.example': 'deny', 'other.example': 'deny' } as const;
  for (const [i, host] of hosts.entries()) {
    await w.append({
      source: 'egress',
      principal: { id: 'agent-7' },
      action: 'net.connect',
      resource: { host, port: 443 },
      context: { project: 'p', leases: ['lease-1'] },
      decision: decided[host as keyof typeof decided],
      reasons: [{ rule: `r${i}` }],
    });
  }
  await w.close();
  writeFileSync(
    join(dir, 'a.pol'),
    `policy "a" {\n  allow net.connect when resource.host == "ok.example"\n  deny net.connect when resource.host ` +
      `== "evil.example"\n}\n`,
  );
  writeFileSync(
    join(dir, 'b.pol'),
    `policy "b" {\n  deny net.connect when resource.host == "ok.example"\n  allow net.connect when resource.host ` +
      `== "other.example"\n}\n`,
  );
  const same = await cli(t, ['audit', 'replay', log, '--policy', join(dir, 'a.pol')]);
  t.equal(same.code, 0, same.err);
  t.match(same.out, /0 of 4 decisions would differ/);
  const diff = await cli(t, ['audit', 'replay', log, '--policy', join(dir, 'b.pol'), '--json']);
  t.equal(diff.code, 1, diff.err);
  const r = JSON.parse(diff.out) as {
    total: number;
    differences: { seq: number; recorded: string; replayed: string }[];
  };
  t.same(
    r.differences.map((d) => [d.seq, d.recorded, d.replayed]),
    [
      [0, 'allow', 'deny'],
      [2, 'deny', 'allow'],
      [3, 'allow', 'deny'],
    ],
  );
  writeFileSync(join(dir, 'bad.pol'), 'policy "x" { allow }\n');
  const bad = await cli(t, ['audit', 'replay', log, '--policy', join(dir, 'bad.pol')]);
  t.equal(bad.code, 2);
  t.match(bad.err, /does not compile/);
});
