/**
 * The vault: one SQLite file per workspace (better-sqlite3), holding secrets under envelope
 * encryption.
 *
 * - Each secret version has its own random 32-byte data key; the value is sealed with it
 *   (XChaCha20-Poly1305, associated data: vault id, workspace, name, version) and the data key
 *   is wrapped by the active KEK (associated data: the same plus the KEK version).
 * - The database holds names, versions, times, lengths, KEK parameters and ciphertext — never a
 *   value or a data key in the clear (README "Threat model").
 * - Every change is one transaction: a failed or killed put, delete or rotate-kek leaves the
 *   vault as it was (SQLite WAL, synchronous=FULL). `init` builds the file aside and links it
 *   into place, so a failed init leaves no vault at all.
 * - secure_delete is on: pages freed by delete are zeroed in the database file.
 */
import { closeSync, constants, fsyncSync, linkSync, mkdirSync, openSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { closestName, isPcxError } from '@portcullis/protocol';
import { KEY_BYTES, loadSodium, open, randomBytes, seal, valueAd, wipe, type KekBinding } from './crypto.js';
import { vaultError } from './errors.js';
import { bindKek, type Kek, type KekParams, type KeyProvider, type ProviderKind } from './kek.js';
import { fsyncDirectory } from './keyfile.js';
import { checkSecretName, checkWorkspace, printable } from './names.js';

export const FORMAT = 'portcullis-vault/1';
/** The largest value a secret may hold, in bytes. */
export const MAX_VALUE_BYTES = 1024 * 1024;

const SCHEMA = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE keks (
  version INTEGER PRIMARY KEY,
  provider TEXT NOT NULL,
  params TEXT NOT NULL,
  check_value BLOB NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('active', 'retired')),
  created_at TEXT NOT NULL,
  retired_at TEXT
);
CREATE UNIQUE INDEX one_active_kek ON keks (state) WHERE state = 'active';
CREATE TABLE names (name TEXT PRIMARY KEY, next_version INTEGER NOT NULL);
CREATE TABLE secrets (
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  length INTEGER NOT NULL,
  kek_version INTEGER NOT NULL,
  wrapped_key BLOB NOT NULL,
  ciphertext BLOB NOT NULL,
  PRIMARY KEY (name, version)
);
`;

export interface KekInfo {
  version: number;
  provider: ProviderKind;
  params: KekParams;
  state: 'active' | 'retired';
  createdAt: string;
  retiredAt?: string;
}

export interface SecretVersionInfo {
  name: string;
  version: number;
  createdAt: string;
  /** Length of the value in bytes (the ciphertext reveals it anyway). */
  length: number;
  kekVersion: number;
}

export interface SecretInfo {
  name: string;
  latest: number;
  versions: number;
  createdAt: string;
  updatedAt: string;
  /** Length of the latest version in bytes. */
  length: number;
}

export interface OpenedSecret {
  name: string;
  version: number;
  /** The plaintext; the caller wipes it (wipe()) when done. */
  value: Uint8Array;
}

export interface InitVaultOptions {
  /** The vault file (see vaultFile()). */
  file: string;
  workspace: string;
  /** Makes the first KEK (version 1). */
  provider: KeyProvider;
}

interface KekRow {
  version: number;
  provider: string;
  params: string;
  check_value: Buffer;
  state: string;
  created_at: string;
  retired_at: string | null;
}

interface SecretRow {
  name: string;
  version: number;
  created_at: string;
  length: number;
  kek_version: number;
  wrapped_key: Buffer;
  ciphertext: Buffer;
}

function now(): string {
  return new Date().toISOString();
}

function pragmas(db: Database.Database, readonly: boolean): void {
  if (!readonly) db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('secure_delete = ON');
  db.pragma('busy_timeout = 5000');
}

/** Create a workspace's vault. Refuses an existing one; on any failure no file is left behind. */
export async function initVault(options: InitVaultOptions): Promise<void> {
  await loadSodium();
  const workspace = checkWorkspace(options.workspace);
  const dir = dirname(options.file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (exists(options.file)) {
    throw vaultError('PCX_VAULT_EXISTS', `workspace "${workspace}" already has a vault (${options.file})`, {
      hint: 'use it, or delete the file to start over (its secrets are lost)',
    });
  }
  const tmp = join(dir, `.${basename(options.file)}.${Buffer.from(randomBytes(6)).toString('hex')}.tmp`);
  const vaultId = Buffer.from(randomBytes(16)).toString('hex');
  const binding: KekBinding = { vaultId, workspace, kekVersion: 1 };
  const old = process.umask(0o077);
  let db: Database.Database | undefined;
  let kek: Kek | undefined;
  try {
    db = new Database(tmp);
    pragmas(db, false);
    const { params, kek: raw } = await options.provider.create(binding);
    kek = bindKek(binding, raw);
    const check = await kek.wrap(randomBytes(KEY_BYTES), 'kek-check');
    const fpKey = randomBytes(KEY_BYTES);
    const fpWrapped = await kek.wrap(fpKey, 'fingerprint-key');
    wipe(fpKey);
    const created = now();
    const d = db;
    d.transaction(() => {
      d.exec(SCHEMA);
      const meta = d.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
      meta.run('format', FORMAT);
      meta.run('workspace', workspace);
      meta.run('vault_id', vaultId);
      meta.run('created_at', created);
      meta.run('fingerprint_key', Buffer.from(fpWrapped));
      meta.run('fingerprint_key_kek', 1);
      d.prepare(
        "INSERT INTO keks (version, provider, params, check_value, state, created_at) VALUES (1, ?, ?, ?, 'active', ?)",
      ).run(params.provider, JSON.stringify(params), Buffer.from(check), created);
    })();
    db.close(); // checkpoints the WAL into the file and removes it
    db = undefined;
    const fd = openSync(tmp, constants.O_RDONLY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, options.file); // atomic, and never replaces a vault created meanwhile
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST')
        throw vaultError('PCX_VAULT_EXISTS', `workspace "${workspace}" already has a vault (${options.file})`);
      throw e;
    }
    fsyncDirectory(dir);
  } finally {
    process.umask(old);
    kek?.destroy();
    db?.close();
    for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`]) {
      try {
        unlinkSync(f);
      } catch {
        // not there
      }
    }
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

export interface OpenVaultOptions {
  file: string;
  /** The workspace the caller means; a vault of another workspace is refused. */
  workspace: string;
  /** Open without write access (the agent reads KEK parameters only). Default false. */
  readonly?: boolean;
}

/** Open a workspace's vault: PCX_VAULT_NOT_FOUND, _CORRUPT or _WRONG_WORKSPACE when it is not one. */
export async function openVault(options: OpenVaultOptions): Promise<Vault> {
  await loadSodium();
  const workspace = checkWorkspace(options.workspace);
  if (!exists(options.file)) {
    throw vaultError('PCX_VAULT_NOT_FOUND', `workspace "${workspace}" has no vault (no ${options.file})`, {
      hint: `create one with "portcullis vault init --workspace ${workspace}"`,
    });
  }
  let db: Database.Database;
  try {
    db = new Database(options.file, { fileMustExist: true, readonly: options.readonly ?? false });
  } catch (e) {
    throw corrupt(options.file, e);
  }
  try {
    pragmas(db, options.readonly ?? false);
    const meta = new Map(
      (db.prepare('SELECT key, value FROM meta').all() as { key: string; value: unknown }[]).map((r) => [
        r.key,
        r.value,
      ]),
    );
    if (meta.get('format') !== FORMAT) {
      throw vaultError(
        'PCX_VAULT_CORRUPT',
        `${options.file} is not a vault of this version (format "${printable(String(meta.get('format')))}")`,
      );
    }
    const fileWorkspace = meta.get('workspace');
    const vaultId = meta.get('vault_id');
    if (typeof fileWorkspace !== 'string' || typeof vaultId !== 'string' || !/^[0-9a-f]{32}$/.test(vaultId))
      throw vaultError('PCX_VAULT_CORRUPT', `${options.file}: the vault's metadata is damaged`);
    if (fileWorkspace !== workspace) {
      throw vaultError(
        'PCX_VAULT_WRONG_WORKSPACE',
        `${options.file} is the vault of workspace "${printable(fileWorkspace)}", not "${workspace}"`,
        { hint: 'a vault file cannot be used for another workspace: its ciphertext is bound to its own' },
      );
    }
    return new Vault(db, options.file, workspace, vaultId, meta);
  } catch (e) {
    db.close();
    if (isPcxError(e)) throw e;
    throw corrupt(options.file, e);
  }
}

function corrupt(file: string, e: unknown): Error {
  const code = (e as { code?: string }).code ?? '';
  return vaultError('PCX_VAULT_CORRUPT', `${file} is not a readable vault (${code || (e as Error).message})`, {
    hint: 'restore it from a backup; a vault file that SQLite cannot read cannot be repaired here',
  });
}

export class Vault {
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    readonly file: string,
    readonly workspace: string,
    readonly vaultId: string,
    private readonly meta: Map<string, unknown>,
  ) {}

  /** Every KEK version this vault has had, oldest first. */
  keks(): KekInfo[] {
    const rows = this.db.prepare('SELECT * FROM keks ORDER BY version').all() as KekRow[];
    return rows.map((r) => this.kekInfo(r));
  }

  private kekInfo(r: KekRow): KekInfo {
    let params: KekParams;
    try {
      params = JSON.parse(r.params) as KekParams;
    } catch {
      throw vaultError('PCX_VAULT_CORRUPT', `${this.file}: the parameters of KEK version ${r.version} are damaged`);
    }
    if (params?.provider !== r.provider || (r.state !== 'active' && r.state !== 'retired'))
      throw vaultError('PCX_VAULT_CORRUPT', `${this.file}: KEK version ${r.version} is damaged`);
    const info: KekInfo = {
      version: r.version,
      provider: r.provider as ProviderKind,
      params,
      state: r.state,
      createdAt: r.created_at,
    };
    if (r.retired_at) info.retiredAt = r.retired_at;
    return info;
  }

  /** The KEK in use. */
  activeKek(): KekInfo {
    const r = this.db.prepare("SELECT * FROM keks WHERE state = 'active'").get() as KekRow | undefined;
    if (!r) throw vaultError('PCX_VAULT_CORRUPT', `${this.file} has no active KEK`);
    return this.kekInfo(r);
  }

  binding(kekVersion: number): KekBinding {
    return { vaultId: this.vaultId, workspace: this.workspace, kekVersion };
  }

  /**
   * Open the active KEK through `provider` and prove it is the right one (its check value
   * authenticates) before anything else is touched: a wrong credential is PCX_VAULT_BAD_CREDENTIAL.
   */
  async unlock(provider: KeyProvider): Promise<Kek> {
    const active = this.activeKek();
    if (active.provider !== provider.kind) {
      throw vaultError(
        'PCX_VAULT_BAD_CREDENTIAL',
        `workspace "${this.workspace}" is locked with a ${active.provider} KEK, not a ${provider.kind}`,
      );
    }
    const binding = this.binding(active.version);
    const kek = bindKek(binding, await provider.open(active.params, binding));
    await this.verifyKek(kek);
    return kek;
  }

  /** Check that `kek` (local, in a token, or in the agent) opens this vault's active KEK check value. */
  async verifyKek(kek: Kek): Promise<void> {
    const r = this.db.prepare("SELECT check_value FROM keks WHERE state = 'active'").get() as
      | { check_value: Buffer }
      | undefined;
    const check = r && (await kek.unwrap(r.check_value, 'kek-check'));
    if (!check) {
      kek.destroy();
      throw vaultError('PCX_VAULT_BAD_CREDENTIAL', `the credential does not unlock workspace "${this.workspace}"`, {
        hint: 'a wrong passphrase, key file or token key',
      });
    }
    wipe(check);
  }

  /** Store a new version of `name`; returns its version. The value stays the caller's (not wiped here). */
  async put(kek: Kek, name: string, value: Uint8Array): Promise<number> {
    checkSecretName(name);
    if (value.length === 0)
      throw vaultError('PCX_VAULT_EMPTY_VALUE', `the value for "${name}" is empty; nothing was stored`, {
        hint: 'pipe the value on stdin or give --file FILE',
      });
    if (value.length > MAX_VALUE_BYTES)
      throw vaultError(
        'PCX_VAULT_VALUE_TOO_LARGE',
        `the value for "${name}" is ${value.length} bytes; the limit is ${MAX_VALUE_BYTES}`,
      );
    this.requireActive(kek);
    const db = this.db;
    // The version is chosen and the row written under the write lock, so concurrent puts get distinct versions.
    db.exec('BEGIN IMMEDIATE');
    let dataKey: Uint8Array | undefined;
    try {
      const next =
        (db.prepare('SELECT next_version FROM names WHERE name = ?').get(name) as { next_version: number } | undefined)
          ?.next_version ?? 1;
      dataKey = randomBytes(KEY_BYTES);
      const ciphertext = seal(dataKey, value, valueAd(this.vaultId, this.workspace, name, next));
      const wrapped = await kek.wrap(dataKey, { name, version: next });
      db.prepare(
        'INSERT INTO secrets (name, version, created_at, length, kek_version, wrapped_key, ciphertext) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?)',
      ).run(name, next, now(), value.length, kek.binding.kekVersion, Buffer.from(wrapped), Buffer.from(ciphertext));
      db.prepare(
        'INSERT INTO names (name, next_version) VALUES (?, ?) ' +
          'ON CONFLICT (name) DO UPDATE SET next_version = excluded.next_version',
      ).run(name, next + 1);
      db.exec('COMMIT');
      return next;
    } catch (e) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw e;
    } finally {
      wipe(dataKey);
    }
  }

  private requireActive(kek: Kek): void {
    const active = this.activeKek().version;
    if (kek.binding.vaultId !== this.vaultId || kek.binding.kekVersion !== active) {
      throw vaultError(
        'PCX_VAULT_LOCKED',
        `the unlocked key of workspace "${this.workspace}" is KEK version ${kek.binding.kekVersion}; ` +
          `the vault now uses ${active}`,
        { hint: `unlock it again: portcullis vault unlock --workspace ${this.workspace}` },
      );
    }
  }

  /**
   * The secret version's metadata (latest when `version` is absent); PCX_VAULT_UNKNOWN_SECRET or
   * PCX_VAULT_UNKNOWN_VERSION when there is none.
   */
  find(name: string, version?: number): SecretVersionInfo {
    checkSecretName(name);
    const row = (
      version === undefined
        ? this.db.prepare('SELECT * FROM secrets WHERE name = ? ORDER BY version DESC LIMIT 1').get(name)
        : this.db.prepare('SELECT * FROM secrets WHERE name = ? AND version = ?').get(name, version)
    ) as SecretRow | undefined;
    if (!row) {
      if (version !== undefined && this.versions(name, { quiet: true }).length > 0) {
        throw vaultError('PCX_VAULT_UNKNOWN_VERSION', `secret "${name}" has no version ${version}`, {
          hint: `see its versions: portcullis vault versions --workspace ${this.workspace} ${name}`,
        });
      }
      throw this.unknown(name);
    }
    return versionInfo(row);
  }

  private unknown(name: string): Error {
    const names = (this.db.prepare('SELECT DISTINCT name FROM secrets').all() as { name: string }[]).map((r) => r.name);
    const guess = closestName(name, names);
    return vaultError(
      'PCX_VAULT_UNKNOWN_SECRET',
      `workspace "${this.workspace}" has no secret "${name}"${guess ? ` (did you mean "${guess}"?)` : ''}`,
      { hint: `list them: portcullis vault list --workspace ${this.workspace}` },
    );
  }

  /** Decrypt one secret version. A changed byte anywhere in its row is PCX_VAULT_DECRYPT_FAILED. */
  async read(kek: Kek, name: string, version?: number): Promise<OpenedSecret> {
    this.requireActive(kek);
    const info = this.find(name, version);
    const row = this.db
      .prepare('SELECT * FROM secrets WHERE name = ? AND version = ?')
      .get(info.name, info.version) as SecretRow;
    return { name: row.name, version: row.version, value: await this.decryptRow(kek, row) };
  }

  private async decryptRow(kek: Kek, row: SecretRow): Promise<Uint8Array> {
    const failed = () =>
      vaultError(
        'PCX_VAULT_DECRYPT_FAILED',
        `secret "${row.name}" version ${row.version} failed authentication: the vault file was changed or is damaged`,
        { hint: 'restore the vault from a backup; nothing was returned' },
      );
    // The row names its KEK version; a changed number makes the unwrap fail (it is in the associated data).
    if (row.kek_version !== kek.binding.kekVersion) throw failed();
    const dataKey = await kek.unwrap(row.wrapped_key, { name: row.name, version: row.version });
    if (!dataKey) throw failed();
    try {
      const value = open(dataKey, row.ciphertext, valueAd(this.vaultId, this.workspace, row.name, row.version));
      if (!value || value.length !== row.length) {
        wipe(value);
        throw failed();
      }
      return value;
    } finally {
      wipe(dataKey);
    }
  }

  /** Every version of every secret (for fingerprints), oldest first within a name. Wipe the values. */
  async readAll(kek: Kek): Promise<OpenedSecret[]> {
    this.requireActive(kek);
    const rows = this.db.prepare('SELECT * FROM secrets ORDER BY name, version').all() as SecretRow[];
    const out: OpenedSecret[] = [];
    try {
      for (const row of rows)
        out.push({ name: row.name, version: row.version, value: await this.decryptRow(kek, row) });
    } catch (e) {
      for (const s of out) wipe(s.value);
      throw e;
    }
    return out;
  }

  /** Names and metadata only: nothing here needs a key. */
  list(): SecretInfo[] {
    const rows = this.db
      .prepare(
        `SELECT name, MAX(version) AS latest, COUNT(*) AS versions, MIN(created_at) AS created,
           MAX(created_at) AS updated,
           (SELECT length FROM secrets s2 WHERE s2.name = s.name ORDER BY version DESC LIMIT 1) AS length
         FROM secrets s GROUP BY name ORDER BY name`,
      )
      .all() as { name: string; latest: number; versions: number; created: string; updated: string; length: number }[];
    return rows.map((r) => ({
      name: r.name,
      latest: r.latest,
      versions: r.versions,
      createdAt: r.created,
      updatedAt: r.updated,
      length: r.length,
    }));
  }

  versions(name: string, options: { quiet?: boolean } = {}): SecretVersionInfo[] {
    checkSecretName(name);
    const rows = this.db.prepare('SELECT * FROM secrets WHERE name = ? ORDER BY version').all(name) as SecretRow[];
    if (rows.length === 0 && !options.quiet) throw this.unknown(name);
    return rows.map(versionInfo);
  }

  /** Delete one version, or every version of `name`; returns the versions deleted. Version numbers are never reused. */
  delete(name: string, version?: number): number[] {
    const victims = version === undefined ? this.versions(name) : [this.find(name, version)];
    const db = this.db;
    db.transaction(() => {
      if (version === undefined) db.prepare('DELETE FROM secrets WHERE name = ?').run(name);
      else db.prepare('DELETE FROM secrets WHERE name = ? AND version = ?').run(name, version);
    })();
    // Move the freed (zeroed) pages out of the write-ahead log into the file, and empty the log.
    db.pragma('wal_checkpoint(TRUNCATE)');
    return victims.map((v) => v.version);
  }

  /** The workspace's fingerprint key (for keyed fingerprints); the caller wipes it. */
  async fingerprintKey(kek: Kek): Promise<Uint8Array> {
    this.requireActive(kek);
    const wrapped = this.meta.get('fingerprint_key');
    const version = this.meta.get('fingerprint_key_kek');
    const failed = () =>
      vaultError(
        'PCX_VAULT_DECRYPT_FAILED',
        `the fingerprint key of workspace "${this.workspace}" failed authentication`,
      );
    if (!Buffer.isBuffer(wrapped) || version !== kek.binding.kekVersion) throw failed();
    const key = await kek.unwrap(wrapped, 'fingerprint-key');
    if (!key) throw failed();
    return key;
  }

  /**
   * Rewrap every data key (and the fingerprint key) from the active KEK to a new one made by
   * `provider`, then retire the old version — all in ONE transaction, so that a crash at any
   * point leaves every secret readable with the old KEK or, once committed, with the new one.
   *
   * The new KEK's material is made durable before the transaction (a key file is fsynced, a
   * token object is persistent), so a committed vault never names a KEK that does not exist.
   */
  async rotateKek(oldKek: Kek, provider: KeyProvider): Promise<{ from: number; to: number; rewrapped: number }> {
    this.requireActive(oldKek);
    const from = oldKek.binding.kekVersion;
    const db = this.db;
    const maxVersion = (db.prepare('SELECT MAX(version) AS v FROM keks').get() as { v: number }).v;
    const to = maxVersion + 1;
    const binding = this.binding(to);
    const { params, kek: raw } = await provider.create(binding);
    const newKek = bindKek(binding, raw);
    try {
      const check = await newKek.wrap(randomBytes(KEY_BYTES), 'kek-check');
      // The write lock is taken before the rows are read, so no put can slip in under the old KEK.
      db.exec('BEGIN IMMEDIATE');
      try {
        const rows = db.prepare('SELECT name, version, kek_version, wrapped_key FROM secrets').all() as Pick<
          SecretRow,
          'name' | 'version' | 'kek_version' | 'wrapped_key'
        >[];
        const update = db.prepare('UPDATE secrets SET kek_version = ?, wrapped_key = ? WHERE name = ? AND version = ?');
        for (const row of rows) {
          const subject = { name: row.name, version: row.version };
          const dataKey = row.kek_version === from ? await oldKek.unwrap(row.wrapped_key, subject) : undefined;
          if (!dataKey) {
            throw vaultError(
              'PCX_VAULT_DECRYPT_FAILED',
              `secret "${row.name}" version ${row.version} failed authentication; nothing was rotated`,
              { hint: 'the vault file was changed or is damaged: restore it from a backup' },
            );
          }
          try {
            update.run(to, Buffer.from(await newKek.wrap(dataKey, subject)), row.name, row.version);
          } finally {
            wipe(dataKey);
          }
        }
        const fpKey = await this.fingerprintKey(oldKek);
        try {
          const fpWrapped = await newKek.wrap(fpKey, 'fingerprint-key');
          db.prepare("UPDATE meta SET value = ? WHERE key = 'fingerprint_key'").run(Buffer.from(fpWrapped));
          db.prepare("UPDATE meta SET value = ? WHERE key = 'fingerprint_key_kek'").run(to);
          this.meta.set('fingerprint_key', Buffer.from(fpWrapped));
        } finally {
          wipe(fpKey);
        }
        const at = now();
        db.prepare("UPDATE keks SET state = 'retired', retired_at = ? WHERE version = ?").run(at, from);
        db.prepare(
          'INSERT INTO keks (version, provider, params, check_value, state, created_at) ' +
            "VALUES (?, ?, ?, ?, 'active', ?)",
        ).run(to, params.provider, JSON.stringify(params), Buffer.from(check), at);
        db.exec('COMMIT');
        this.meta.set('fingerprint_key_kek', to);
        return { from, to, rewrapped: rows.length };
      } catch (e) {
        if (db.inTransaction) db.exec('ROLLBACK');
        this.meta.set(
          'fingerprint_key',
          (db.prepare("SELECT value FROM meta WHERE key = 'fingerprint_key'").get() as { value: Buffer }).value,
        );
        this.meta.set('fingerprint_key_kek', from);
        throw e;
      }
    } finally {
      newKek.destroy();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

function versionInfo(r: SecretRow): SecretVersionInfo {
  return { name: r.name, version: r.version, createdAt: r.created_at, length: r.length, kekVersion: r.kek_version };
}
