/**
 * What names the vault accepts, and where a workspace's vault lives. Workspace and secret names
 * end up in file names, audit records, policy attributes and (for --env) environment variable
 * names, so they are kept to a small, unsurprising alphabet.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { vaultError } from './errors.js';

const WORKSPACE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
// No "," (exec --secret A,B), "=" (NAME=value framing), whitespace or control characters.
const SECRET = /^[A-Za-z0-9_][A-Za-z0-9_./-]{0,127}$/;

export function checkWorkspace(workspace: string): string {
  if (!WORKSPACE.test(workspace)) {
    throw vaultError('PCX_VAULT_BAD_WORKSPACE', `"${printable(workspace)}" is not a workspace name`, {
      hint: 'a workspace name is 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit',
    });
  }
  return workspace;
}

export function checkSecretName(name: string): string {
  if (!SECRET.test(name) || name.includes('//') || name.endsWith('/')) {
    throw vaultError('PCX_VAULT_BAD_NAME', `"${printable(name)}" is not a secret name`, {
      hint: 'a secret name is 1-128 letters, digits, "_", ".", "-" or "/", starting with a letter, digit or "_"',
    });
  }
  return name;
}

/** Quote user input safely: control characters become \u escapes, long input is cut. */
export function printable(s: string): string {
  const cut = s.length > 80 ? `${s.slice(0, 80)}…` : s;
  return JSON.stringify(cut).slice(1, -1);
}

/**
 * The vault directory: $PORTCULLIS_VAULT_DIR, else $XDG_DATA_HOME/portcullis/vault, else
 * ~/.local/share/portcullis/vault.
 */
export function defaultVaultDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PORTCULLIS_VAULT_DIR) return env.PORTCULLIS_VAULT_DIR;
  const data = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(data, 'portcullis', 'vault');
}

/** A workspace's vault file in `dir`. */
export function vaultFile(dir: string, workspace: string): string {
  return join(dir, `${checkWorkspace(workspace)}.vault`);
}

/** The environment variable `vault exec --env` sets for a secret: upper case, other characters "_". */
export function envName(secret: string): string {
  const v = secret.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  return /^[0-9]/.test(v) ? `_${v}` : v;
}
