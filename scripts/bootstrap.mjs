#!/usr/bin/env node
// The README's two commands, for a fresh machine that has only Node 20 and npm:
//   npm start  → install + build on first run, then run the main job
//   npm test   → install + build on first run, then run every test
// pnpm is pinned and installed into .tools/ with npm (no corepack, no global install).
import { spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pnpm = join(root, '.tools', 'node_modules', '.bin', 'pnpm');
const env = { ...process.env };
// node-gyp (better-sqlite3) builds against the machine's own Node headers when they are
// installed, instead of downloading them (this network reaches only the package registries).
if (!env.npm_config_nodedir && existsSync('/usr/include/node/node.h')) env.npm_config_nodedir = '/usr';

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env, ...opts });
  if (r.error) {
    console.error(`bootstrap: could not run ${cmd}: ${r.error.message}`);
    process.exit(1);
  }
  return r.status ?? 1;
}

function must(cmd, args, what) {
  const code = run(cmd, args);
  if (code !== 0) {
    console.error(`bootstrap: ${what} failed (exit ${code})`);
    process.exit(code);
  }
}

function mtime(p) {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}

function ensureInstalled() {
  if (!existsSync(pnpm)) {
    console.error('bootstrap: installing the pinned pnpm into .tools/ …');
    must(
      'npm',
      ['install', '--prefix', join(root, '.tools'), '--no-audit', '--no-fund', '--loglevel=error'],
      'installing pnpm',
    );
  }
  const marker = join(root, 'node_modules', '.modules.yaml');
  if (!existsSync(marker) || mtime(join(root, 'pnpm-lock.yaml')) > mtime(marker)) {
    console.error('bootstrap: installing dependencies with pnpm …');
    const frozen = existsSync(join(root, 'pnpm-lock.yaml')) ? ['--frozen-lockfile'] : [];
    must(pnpm, ['install', ...frozen, '--reporter=append-only'], 'pnpm install');
  }
  // tap compiles its plugin set into its runner; our set (TypeScript through tsx, not ts-node)
  // differs from tap's default, so the runner is rebuilt whenever the root tap config changes.
  const tapMarker = join(root, 'node_modules', '.portcullis-tap-built');
  if (mtime(join(root, 'package.json')) > mtime(tapMarker)) {
    must(join(root, 'node_modules', '.bin', 'tap'), ['build'], 'tap build');
    writeFileSync(tapMarker, new Date().toISOString() + '\n');
  }
}

function build() {
  // Code generation first (the policy grammar, with peggy), then one incremental tsc -b over
  // every package (project references give the order; an up-to-date tree costs about a second).
  must(pnpm, ['-r', '--if-present', 'run', 'generate'], 'code generation');
  must(pnpm, ['exec', 'tsc', '-b'], 'tsc -b');
}

const job = process.argv[2] ?? 'start';
const rest = process.argv.slice(3);
ensureInstalled();
build();
switch (job) {
  case 'build':
    break;
  case 'test':
    process.exit(run(process.execPath, [join(root, 'scripts', 'run-tests.mjs'), ...rest]));
    break;
  case 'bench':
    process.exit(run(process.execPath, [join(root, 'bench', 'run.mjs'), ...rest]));
    break;
  case 'start':
    process.exit(run(process.execPath, [join(root, 'scripts', 'start.mjs'), ...rest]));
    break;
  default:
    console.error(`bootstrap: unknown job "${job}" (expected start, test, build or bench)`);
    process.exit(2);
}
