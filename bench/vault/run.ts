/**
 * bench/vault: what the vault costs, each figure next to a baseline measured in the same run.
 *
 *   npm run bench vault        (VAULT_BENCH_REWRAP=10000 secrets by default)
 *
 * - Unlock: Argon2id (libsodium crypto_pwhash in a worker thread, as the passphrase provider
 *   runs it) at libsodium's INTERACTIVE, MODERATE (the default, the floor) and SENSITIVE
 *   profiles; ratios to INTERACTIVE.
 * - put / get latency on a key-file vault (real SQLite file, synchronous=FULL), against the same
 *   SQLite statements with the plaintext and no crypto (the floor).
 * - `vault exec` overhead: runWithSecrets (socket pair, framing, zeroing) and the full release
 *   (PDP `secret.inject` decision, audit record and ack, decryption, then runWithSecrets, with a
 *   real PDP and audit sink on Unix sockets) against a plain spawn of the same command with the
 *   value piped to its stdin.
 * - rotate-kek rewrap throughput for VAULT_BENCH_REWRAP secrets, against unwrapping and wrapping
 *   the same number of keys in memory (the crypto alone).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AuditLog, generateKey, parseSigningKey, serveSink } from '@portcullis/audit';
import { startPdp } from '@portcullis/pdp';
import { AuditClient, PdpClient } from '@portcullis/protocol';
import { initVault, keyFileProvider, openSecretsForInjection, openVault, runWithSecrets } from '@portcullis/vault';
import { deriveKek } from '../../packages/vault/src/passphrase.ts';
import { loadSodium, open, seal, randomBytes } from '../../packages/vault/src/crypto.ts';
import { writeReport, type Chart } from '../lib/report.ts';

const REWRAP = Number(process.env.VAULT_BENCH_REWRAP ?? 10_000);
const dir = mkdtempSync(join(tmpdir(), 'pcx-bench-vault-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!;

await loadSodium();

// ---- Argon2id ----
const profiles = [
  { name: 'interactive (2 passes, 64 MiB)', opslimit: 2, memlimit: 64 * 2 ** 20, runs: 5 },
  { name: 'moderate (3 passes, 256 MiB): default', opslimit: 3, memlimit: 256 * 2 ** 20, runs: 5 },
  { name: 'sensitive (4 passes, 1 GiB)', opslimit: 4, memlimit: 1024 * 2 ** 20, runs: 3 },
];
const kdf: Record<string, { median_ms: number; runs_ms: number[] }> = {};
for (const p of profiles) {
  const runs: number[] = [];
  for (let i = 0; i < p.runs; i++) {
    const t0 = process.hrtime.bigint();
    const key = await deriveKek(new Uint8Array(Buffer.from('a passphrase of ordinary length')), {
      provider: 'passphrase',
      kdf: 'argon2id13',
      opslimit: p.opslimit,
      memlimit: p.memlimit,
      salt: Buffer.from(randomBytes(16)).toString('base64'),
    });
    runs.push(ms(t0));
    key.fill(0);
  }
  kdf[p.name] = { median_ms: median(runs), runs_ms: runs };
  console.log(`argon2id ${p.name}: median ${median(runs).toFixed(0)} ms`);
}
const interactive = kdf[profiles[0]!.name]!.median_ms;

// ---- put / get ----
const file = join(dir, 'alpha.vault');
await initVault({ file, workspace: 'alpha', provider: keyFileProvider({ path: join(dir, 'alpha.kek') }) });
const vault = await openVault({ file, workspace: 'alpha' });
const kek = await vault.unlock(keyFileProvider());
const value = new Uint8Array(Buffer.from('x'.repeat(40)));
const OPS = 500;
const putMs: number[] = [];
for (let i = 0; i < OPS; i++) {
  const t0 = process.hrtime.bigint();
  await vault.put(kek, `s${i}`, value);
  putMs.push(ms(t0));
}
const getMs: number[] = [];
for (let i = 0; i < OPS; i++) {
  const t0 = process.hrtime.bigint();
  (await vault.read(kek, `s${i}`)).value.fill(0);
  getMs.push(ms(t0));
}
const floorDb = new Database(join(dir, 'floor.db'));
floorDb.pragma('journal_mode = WAL');
floorDb.pragma('synchronous = FULL');
floorDb.exec('CREATE TABLE s (name TEXT, version INTEGER, value BLOB, PRIMARY KEY (name, version))');
const ins = floorDb.prepare('INSERT INTO s VALUES (?, 1, ?)');
const sel = floorDb.prepare('SELECT value FROM s WHERE name = ? ORDER BY version DESC LIMIT 1');
const floorPut: number[] = [];
const floorGet: number[] = [];
for (let i = 0; i < OPS; i++) {
  const t0 = process.hrtime.bigint();
  floorDb.exec('BEGIN IMMEDIATE');
  ins.run(`s${i}`, Buffer.from(value));
  floorDb.exec('COMMIT');
  floorPut.push(ms(t0));
}
for (let i = 0; i < OPS; i++) {
  const t0 = process.hrtime.bigint();
  sel.get(`s${i}`);
  floorGet.push(ms(t0));
}
floorDb.close();
console.log(
  `put median ${median(putMs).toFixed(3)} ms (floor ${median(floorPut).toFixed(3)}); ` +
    `get median ${median(getMs).toFixed(3)} ms (floor ${median(floorGet).toFixed(3)})`,
);

// ---- exec overhead ----
writeFileSync(join(dir, 'policy.pol'), 'policy "b" {\n  allow secret.inject when resource.workspace == "alpha"\n}\n');
const pdp = await startPdp({ policyPath: join(dir, 'policy.pol'), socketPath: join(dir, 'pdp.sock'), log: () => {} });
const auditLog = await AuditLog.open({
  dir: join(dir, 'audit'),
  key: await parseSigningKey((await generateKey('b')).privateKey),
});
const sink = await serveSink({ socketPath: join(dir, 'audit.sock'), log: auditLog });
const pdpClient = new PdpClient({ socketPath: join(dir, 'pdp.sock') });
const audit = new AuditClient({ socketPath: join(dir, 'audit.sock') });
const CMD = '/bin/cat';
const plain = async () => {
  const child = spawn(CMD, [], { stdio: ['pipe', 'ignore', 'inherit'] });
  child.stdin.end(Buffer.from(value));
  await new Promise((r) => child.once('exit', r));
};
const inject = async () => {
  await runWithSecrets({
    command: CMD,
    args: [],
    stdout: 'ignore',
    secrets: [{ name: 's1', version: 1, value: Uint8Array.from(value) }],
  });
};
const full = async () => {
  const secrets = await openSecretsForInjection({ vault, kek, pdp: pdpClient, audit, principal: { id: 'bench' } }, [
    { name: 's1' },
  ]);
  await runWithSecrets({ command: CMD, args: [], stdout: 'ignore', secrets });
};
const EXEC_RUNS = 40;
const execMs: Record<string, number[]> = { plain: [], inject: [], full: [] };
for (let i = 0; i < EXEC_RUNS; i++) {
  // Interleaved, so that machine noise hits the three alike.
  for (const [k, f] of [
    ['plain', plain],
    ['inject', inject],
    ['full', full],
  ] as const) {
    const t0 = process.hrtime.bigint();
    await f();
    execMs[k]!.push(ms(t0));
  }
}
pdpClient.close();
audit.close();
await sink.close();
await auditLog.close();
await pdp.close({ drainTimeoutMs: 100 });
console.log(
  `exec: plain spawn ${median(execMs.plain!).toFixed(2)} ms, runWithSecrets ${median(execMs.inject!).toFixed(2)} ms, ` +
    `release + inject ${median(execMs.full!).toFixed(2)} ms`,
);

// ---- rewrap ----
const rfile = join(dir, 'rotate.vault');
await initVault({ file: rfile, workspace: 'rotate', provider: keyFileProvider({ path: join(dir, 'rotate.kek') }) });
const rv = await openVault({ file: rfile, workspace: 'rotate' });
const rk = await rv.unlock(keyFileProvider());
for (let i = 0; i < REWRAP; i++) await rv.put(rk, `s${i}`, value);
const tr = process.hrtime.bigint();
const rot = await rv.rotateKek(rk, keyFileProvider({ path: join(dir, 'rotate-2.kek') }));
const rewrapMs = ms(tr);
const kekBytes = randomBytes(32);
const kek2Bytes = randomBytes(32);
const wrapped = Array.from({ length: REWRAP }, () => seal(kekBytes, randomBytes(32), new Uint8Array(60)));
const tc = process.hrtime.bigint();
for (const w of wrapped) seal(kek2Bytes, open(kekBytes, w, new Uint8Array(60))!, new Uint8Array(60));
const cryptoMs = ms(tc);
console.log(
  `rewrap ${rot.rewrapped} keys: ${rewrapMs.toFixed(0)} ms (${((REWRAP / rewrapMs) * 1000).toFixed(0)}/s); ` +
    `crypto alone ${cryptoMs.toFixed(0)} ms`,
);
rv.close();
kek.destroy();
vault.close();

const data = {
  argon2id: kdf,
  argon2id_ratio_to_interactive: Object.fromEntries(
    Object.entries(kdf).map(([k, v]) => [k, v.median_ms / interactive]),
  ),
  put_ms: {
    median: median(putMs),
    p99: p99(putMs),
    floor_median: median(floorPut),
    ratio: median(putMs) / median(floorPut),
  },
  get_ms: {
    median: median(getMs),
    p99: p99(getMs),
    floor_median: median(floorGet),
    ratio: median(getMs) / median(floorGet),
  },
  exec_ms: {
    plain_spawn: median(execMs.plain!),
    run_with_secrets: median(execMs.inject!),
    release_and_inject: median(execMs.full!),
    ratio_run_with_secrets: median(execMs.inject!) / median(execMs.plain!),
    ratio_release_and_inject: median(execMs.full!) / median(execMs.plain!),
  },
  rewrap: {
    secrets: REWRAP,
    ms: rewrapMs,
    per_second: (REWRAP / rewrapMs) * 1000,
    crypto_only_ms: cryptoMs,
    ratio_to_crypto_only: rewrapMs / cryptoMs,
  },
};
const charts: Chart[] = [
  {
    title: 'Argon2id unlock, median (ms; lower is faster, higher is costlier to guess)',
    unit: 'ms',
    categories: profiles.map((p) => p.name),
    series: [{ name: 'crypto_pwhash', values: profiles.map((p) => kdf[p.name]!.median_ms) }],
  },
  {
    title: 'put / get latency, median (ms)',
    unit: 'ms',
    categories: ['put', 'get'],
    series: [
      { name: 'vault', values: [median(putMs), median(getMs)] },
      { name: 'SQLite, no crypto (floor)', values: [median(floorPut), median(floorGet)] },
    ],
  },
  {
    title: `spawning ${CMD} with a 40-byte secret on stdin, median (ms)`,
    unit: 'ms',
    categories: ['plain spawn', 'runWithSecrets', 'PDP + audit + decrypt + runWithSecrets'],
    series: [{ name: 'median', values: [median(execMs.plain!), median(execMs.inject!), median(execMs.full!)] }],
  },
  {
    title: `rotate-kek of ${REWRAP} secrets (ms)`,
    unit: 'ms',
    categories: ['rotate-kek (one transaction)', 'unwrap + wrap in memory only'],
    series: [{ name: 'time', values: [rewrapMs, cryptoMs] }],
  },
];
const written = writeReport('vault', data, charts);
console.log(`wrote ${written.json} and ${written.svg}`);
