/**
 * The outside programs the tests drive (real clients: curl, git, python3 with requests; and the
 * tools that set up their world: openssl, softhsm2, prlimit), in one place. A test whose program
 * is missing is skipped with a printed reason naming the Debian package that provides it, instead
 * of failing on a bare machine; .ci/run installs every package listed here, so CI runs them all.
 *
 *   t.test('curl through the proxy', needs('curl'), async (t) => { … });   // tap prints "# SKIP …"
 *   if (missingTools('openssl')) …                                          // the reason, or undefined
 *
 * A program counts as present when its probe runs and exits 0 (found on PATH, and for Python the
 * module imports), checked once per process.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** The shared object SoftHSM2 installs (Debian's path on each architecture we run on). */
export const SOFTHSM2_MODULES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
];

const TOOLS = {
  curl: { probe: ['curl', '--version'], debian: 'curl' },
  git: { probe: ['git', '--version'], debian: 'git' },
  openssl: { probe: ['openssl', 'version'], debian: 'openssl' },
  'python3-requests': { probe: ['python3', '-c', 'import requests'], debian: 'python3-requests' },
  softhsm2: { probe: ['softhsm2-util', '--version'], debian: 'softhsm2', files: SOFTHSM2_MODULES },
  prlimit: { probe: ['prlimit', '--version'], debian: 'util-linux' },
} satisfies Record<string, { probe: string[]; debian: string; files?: string[] }>;

export type Tool = keyof typeof TOOLS;

const found = new Map<Tool, boolean>();

function present(tool: Tool): boolean {
  let ok = found.get(tool);
  if (ok === undefined) {
    const spec: { probe: string[]; files?: string[] } = TOOLS[tool];
    const [cmd, ...args] = spec.probe;
    const r = spawnSync(cmd!, args, { stdio: 'ignore', timeout: 10_000 });
    ok = r.error === undefined && r.status === 0 && (spec.files?.some((f) => existsSync(f)) ?? true);
    found.set(tool, ok);
  }
  return ok;
}

/** Why a test that needs `tools` cannot run here, or undefined when every one of them is present. */
export function missingTools(...tools: Tool[]): string | undefined {
  const missing = tools.filter((tool) => !present(tool));
  if (missing.length === 0) return undefined;
  const packages = [...new Set(missing.map((tool) => TOOLS[tool].debian))];
  return `${missing.join(' and ')} not installed (Debian: apt-get install ${packages.join(' ')})`;
}

/** tap options for a test that needs `tools`: skipped with the reason when one is missing. */
export function needs(...tools: Tool[]): { skip?: string } {
  const reason = missingTools(...tools);
  return reason ? { skip: reason } : {};
}
