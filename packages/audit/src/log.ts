/**
 * The log writer: the single writer of one log directory. Records are grouped: everything that
 * arrives while the previous write is in flight (or within one tick) becomes one batch, hashed,
 * chained, added to the Merkle compact range and written with one write(); the batch is acked
 * once write() returned (default mode) or once fdatasync() returned (durable mode). In default
 * mode a timer fdatasyncs dirty data every `fsyncIntervalMs`.
 */
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  closeSync,
  readdirSync,
  readFileSync,
  writeFileSync,
  writeSync,
  renameSync,
  rmSync,
  truncateSync,
} from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PcxError, GENESIS_PREV, type AuditAck, type AuditRecordInput } from '@portcullis/protocol';
import {
  CHECKPOINTS,
  ORIGIN_FILE,
  PUBKEY_FILE,
  SEGMENTS,
  SEGMENT_RE,
  CHECKPOINT_RE,
  checkpointName,
  encodeAppended,
  readOrigin,
  segmentPath,
} from './format.js';
import { lockDir, type DirLock } from './lock.js';
import { CompactRange, leafHashInPlace } from './merkle.js';
import { checkOrigin, openCheckpoint, signCheckpoint, verifierKeyString, type SigningKey } from './note.js';

export interface AuditLogOptions {
  dir: string;
  key: SigningKey;
  /** Checkpoint origin line for a new log; an existing log keeps the one in DIR/origin. */
  origin?: string;
  /** Ack only after fdatasync. Default false: ack after write(), fsync in group commits. */
  durable?: boolean;
  /** Default mode: the longest time acked data stays unsynced. Default 100 ms. */
  fsyncIntervalMs?: number;
  /** Write a checkpoint after this many new records. Default 1000. */
  checkpointEvery?: number;
  /** …or after this long with new records. Default 10 s. */
  checkpointIntervalMs?: number;
  /** Start a new segment once one reaches this size. Default 64 MiB. */
  segmentBytes?: number;
  /** Records waiting to be written before new ones are refused. Default 100,000. */
  maxPending?: number;
  /** Told about repairs and background failures. */
  log?: (message: string) => void;
}

interface Pending {
  input: AuditRecordInput;
  resolve: (ack: AuditAck) => void;
  reject: (e: PcxError) => void;
}

export interface LogState {
  size: number;
  writable: boolean;
  durable: boolean;
}

export class AuditLog {
  private queue: Pending[] = [];
  private pumping = false;
  private scheduled = false;
  private closed = false;
  private drained: (() => void) | undefined;
  private dirty = false;
  private syncing: Promise<void> | undefined;
  private syncError: PcxError | undefined;
  private writeError: PcxError | undefined;
  private checkpointDue = false;
  private lastCheckpoint: number;
  /** The checkpoint being written, in the background of the write path. */
  private checkpointing: Promise<void> | undefined;
  /** A segment rotation in progress (it fsyncs the old segment). */
  private rotating: Promise<void> | undefined;
  private readonly timers: NodeJS.Timeout[] = [];

  private constructor(
    private readonly options: Required<Omit<AuditLogOptions, 'origin'>>,
    private readonly lock: DirLock,
    readonly origin: string,
    private fh: FileHandle,
    private segment: number,
    private segmentSize: number,
    private size: number,
    private prev: string,
    private tree: CompactRange,
    lastCheckpoint: number,
  ) {
    this.lastCheckpoint = lastCheckpoint;
    if (!options.durable) {
      const t = setInterval(() => void this.sync().catch(() => {}), options.fsyncIntervalMs);
      t.unref();
      this.timers.push(t);
    }
    const c = setInterval(() => {
      if (this.size > this.lastCheckpoint) {
        this.checkpointDue = true;
        this.schedule();
      }
    }, options.checkpointIntervalMs);
    c.unref();
    this.timers.push(c);
  }

  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const o = {
      dir: options.dir,
      key: options.key,
      durable: options.durable ?? false,
      fsyncIntervalMs: options.fsyncIntervalMs ?? 100,
      checkpointEvery: options.checkpointEvery ?? 1000,
      checkpointIntervalMs: options.checkpointIntervalMs ?? 10_000,
      segmentBytes: options.segmentBytes ?? 64 * 1024 * 1024,
      maxPending: options.maxPending ?? 100_000,
      log: options.log ?? (() => {}),
    };
    const dir = o.dir;
    try {
      mkdirSync(dir, { recursive: true });
      // Not recursive here: a recursive mkdir reports ENOENT for a read-only file system.
      for (const sub of [SEGMENTS, CHECKPOINTS]) {
        try {
          mkdirSync(join(dir, sub));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
      }
    } catch (e) {
      throw new PcxError(
        'PCX_AUDIT_DIR_UNWRITABLE',
        `cannot create the audit directory ${dir}: ${(e as NodeJS.ErrnoException).code}`,
        { hint: 'the log directory must be writable by the sink' },
      );
    }
    const lock = lockDir(dir);
    try {
      const originPath = join(dir, ORIGIN_FILE);
      let origin: string;
      if (existsSync(originPath)) {
        // Exactly what was written (one line and its newline): a trimmed origin would not be the
        // one in the checkpoints. Checked again: the file may have been edited.
        origin = readOrigin(originPath);
        checkOrigin(origin, `the origin in ${originPath}`);
      } else {
        origin = options.origin ?? `${hostname()}/portcullis-audit/${randomBytes(8).toString('hex')}`;
        checkOrigin(origin);
        writeDurably(dir, ORIGIN_FILE, origin + '\n');
      }
      writeDurably(dir, PUBKEY_FILE, verifierKeyString(o.key) + '\n');
      const checkpoints = readdirSync(join(dir, CHECKPOINTS))
        .filter((n) => CHECKPOINT_RE.test(n))
        .map((n) => Number(CHECKPOINT_RE.exec(n)![1]))
        .sort((a, b) => a - b);
      const lastCheckpoint = checkpoints.at(-1) ?? 0;
      const scan = recover(dir, o.log, lastCheckpoint);
      if (lastCheckpoint > scan.size) {
        throw new PcxError(
          'PCX_AUDIT_LOG_CORRUPT',
          `the log holds ${scan.size} records but a checkpoint covers ${lastCheckpoint}: records were lost or removed`,
          { hint: `run "portcullis audit verify ${dir}" for details; the sink will not append to a damaged log` },
        );
      }
      if (lastCheckpoint > 0) await checkHistory(dir, origin, o.key, lastCheckpoint, scan.rootAtCheckpoint!);
      const fh = await open(segmentPath(dir, scan.segment), 'a');
      return new AuditLog(
        o,
        lock,
        origin,
        fh,
        scan.segment,
        scan.segmentSize,
        scan.size,
        scan.prev,
        scan.tree,
        lastCheckpoint,
      );
    } catch (e) {
      lock.release();
      if (e instanceof PcxError) throw e;
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw new PcxError('PCX_AUDIT_DIR_UNWRITABLE', `cannot open the audit log in ${dir}: ${code}`, {
        hint: 'the directory must be writable and have free space',
      });
    }
  }

  get state(): LogState {
    return {
      size: this.size,
      writable: this.writeError === undefined && this.syncError === undefined,
      durable: this.options.durable,
    };
  }

  /** Append a record that prepareAuditRecord already validated and redacted. */
  append(input: AuditRecordInput): Promise<AuditAck> {
    return new Promise<AuditAck>((resolve, reject) => this.enqueue(input, resolve, reject));
  }

  /**
   * append() with callbacks, for the socket server's hot path (no promise and no extra
   * microtask per record). Exactly one of them is called, possibly before this returns.
   */
  enqueue(input: AuditRecordInput, resolve: (ack: AuditAck) => void, reject: (e: PcxError) => void): void {
    const refused = this.refusal();
    if (refused) {
      reject(refused);
      return;
    }
    this.queue.push({ input, resolve, reject });
    this.schedule();
  }

  /** Why a record would be refused now, if it would. */
  private refusal(): PcxError | undefined {
    if (this.closed) return new PcxError('PCX_AUDIT_CLOSED', 'the audit sink is shutting down');
    if (this.syncError) return this.syncError;
    if (this.queue.length >= this.options.maxPending)
      return new PcxError(
        'PCX_AUDIT_OVERLOADED',
        `the audit sink has ${this.queue.length} records waiting to be written`,
      );
    return undefined;
  }

  /** Write a checkpoint now if records arrived since the last one. */
  async checkpoint(): Promise<void> {
    this.checkpointDue = true;
    this.schedule();
    await this.idle();
    await this.checkpointing;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await this.idle();
    await this.checkpointing;
    try {
      // Best effort: the records are written already; a final checkpoint that cannot be written
      // (full disk) leaves them unsigned until the next start, which is what verify reports.
      if (this.size > this.lastCheckpoint && !this.writeError) await this.writeCheckpoint();
      else await this.sync();
    } catch (e) {
      this.options.log(`on shutdown: ${(e as Error).message}`);
    } finally {
      await this.fh.close();
      this.lock.release();
    }
  }

  private idle(): Promise<void> {
    if (!this.pumping && !this.scheduled && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const prev = this.drained;
      this.drained = () => {
        prev?.();
        resolve();
      };
    });
  }

  private schedule(): void {
    if (this.pumping || this.scheduled) return;
    this.scheduled = true;
    // setImmediate, not a microtask: let every frame that arrived in this I/O phase join the batch.
    setImmediate(() => {
      this.scheduled = false;
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (;;) {
        if (this.queue.length > 0) {
          const batch = this.queue;
          this.queue = [];
          await this.writeBatch(batch);
        }
        // Checkpoints are written beside the write path (their fsyncs and file writes would
        // otherwise hold up every record behind them), one at a time: when the next is due
        // while one is still being written, the writes wait for it, so a checkpoint still comes
        // every `checkpointEvery` records (checked after each batch).
        if (this.checkpointWanted() && this.checkpointing) await this.checkpointing;
        if (!this.checkpointWanted()) this.checkpointDue = false;
        else {
          this.checkpointDue = false;
          const size = this.size;
          this.checkpointing = this.writeCheckpoint()
            .catch((e: unknown) => this.options.log(`checkpoint at size ${size} failed: ${(e as Error).message}`))
            .finally(() => {
              this.checkpointing = undefined;
            });
        }
        if (this.queue.length === 0) break;
      }
    } finally {
      this.pumping = false;
      const d = this.drained;
      this.drained = undefined;
      d?.();
    }
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    // Keep the pre-batch state: a failed write is rolled back as if the batch never came.
    const before = { size: this.size, prev: this.prev, tree: this.tree.clone() };
    const lines: string[] = [];
    const acks: AuditAck[] = [];
    const now = new Date().toISOString();
    const accepted: Pending[] = [];
    for (const p of batch) {
      let enc: { line: string; hash: string };
      try {
        enc = encodeAppended(p.input, this.size, p.input.time ?? now, this.prev);
      } catch (e) {
        // Only a record that bypassed prepareAuditRecord gets here; it must not stop the others.
        p.reject(new PcxError('PCX_AUDIT_INVALID_RECORD', `invalid audit record: ${(e as Error).message}`));
        continue;
      }
      lines.push(enc.line);
      acks.push({ seq: this.size, hash: enc.hash });
      accepted.push(p);
      this.prev = enc.hash;
      this.size++;
    }
    batch = accepted;
    if (batch.length === 0) return;
    // Encoded once, with one spare byte in front: the leaf hashes are taken in place from the
    // bytes that are written (each line's preceding byte serves as the 0x00 prefix).
    const text = lines.join('\n') + '\n';
    const framed = Buffer.allocUnsafe(1 + Buffer.byteLength(text));
    framed.write(text, 1);
    for (let start = 1, nl = framed.indexOf(0x0a, 1); nl >= 0; start = nl + 1, nl = framed.indexOf(0x0a, start)) {
      this.tree.append(leafHashInPlace(framed, start, nl));
    }
    const data = framed.subarray(1);
    // Where this batch starts in the current segment (0 after a rotation).
    let start = this.segmentSize;
    try {
      if (this.segmentSize > 0 && this.segmentSize + data.length > this.options.segmentBytes) {
        await this.rotate();
        start = 0;
      }
      let off = 0;
      while (off < data.length) {
        // Default mode: a synchronous write (into the page cache: microseconds, bounded by the
        // batch size) saves a thread-pool round trip before every ack. Durable mode waits for
        // fdatasync anyway, so it keeps the event loop free during the write as well.
        off += this.options.durable
          ? (await this.fh.write(data, off, data.length - off)).bytesWritten
          : writeSync(this.fh.fd, data, off, data.length - off);
      }
      this.segmentSize += data.length;
      if (this.options.durable) await this.fh.datasync();
      else this.dirty = true;
      this.writeError = undefined;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      // Cut off whatever part of the batch reached the file so that the log ends on a record boundary.
      // (A rotation that failed after switching segments left segmentSize at 0: start there.)
      start = Math.min(start, this.segmentSize);
      try {
        await this.fh.truncate(start);
      } catch {
        /* the next start repairs a torn tail */
      }
      this.size = before.size;
      this.prev = before.prev;
      this.tree = before.tree;
      this.segmentSize = start;
      const why =
        code === 'ENOSPC'
          ? 'the disk is full'
          : code === 'EFBIG'
            ? 'the file size limit was reached'
            : code === 'EACCES' || code === 'EROFS'
              ? 'the log is not writable'
              : `write failed (${code})`;
      this.writeError = new PcxError('PCX_AUDIT_WRITE_FAILED', `${why}; the record was not written`);
      for (const p of batch) p.reject(this.writeError);
      return;
    }
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(acks[i]!);
  }

  private rotate(): Promise<void> {
    this.rotating = this.doRotate().finally(() => {
      this.rotating = undefined;
    });
    return this.rotating;
  }

  private async doRotate(): Promise<void> {
    // Swap in the new segment first, so that a timer fsync never runs on a closed handle; then
    // make the old one durable (after any fsync already running on it) and close it.
    const old = this.fh;
    this.fh = await open(segmentPath(this.options.dir, this.segment + 1), 'a');
    this.segment++;
    this.segmentSize = 0;
    fsyncDir(join(this.options.dir, SEGMENTS));
    if (this.syncing) await this.syncing.catch(() => {});
    await old.datasync();
    await old.close();
  }

  private checkpointWanted(): boolean {
    return (
      (this.checkpointDue || this.size - this.lastCheckpoint >= this.options.checkpointEvery) &&
      this.size > this.lastCheckpoint &&
      !this.writeError
    );
  }

  private async writeCheckpoint(): Promise<void> {
    // Called between write batches: every record up to `size` has been written. The pump may
    // write more while this runs; the checkpoint covers exactly `size`.
    const size = this.size;
    const root = this.tree.root();
    // A checkpoint must never name records that a power loss could take away: sync them first
    // (after any sync already in flight, which may have started before the last write). If a
    // rotation started meanwhile, the records may sit in the old segment, which it syncs.
    // (In durable mode writeBatch fdatasynced every record before the pump got here.)
    if (!this.options.durable) {
      if (this.syncing) await this.syncing;
      await this.sync();
      if (this.rotating) await this.rotating;
    }
    const note = await signCheckpoint({ origin: this.origin, size, root }, this.options.key);
    await writeDurablyAsync(join(this.options.dir, CHECKPOINTS), checkpointName(size), note);
    this.lastCheckpoint = size;
  }

  private sync(): Promise<void> {
    if (this.syncing) return this.syncing;
    if (!this.dirty && !this.options.durable) return Promise.resolve();
    this.dirty = false;
    this.syncing = this.fh
      .datasync()
      .catch((e: NodeJS.ErrnoException) => {
        this.syncError = new PcxError(
          'PCX_AUDIT_SYNC_FAILED',
          `fsync of the audit log failed (${e.code ?? e.message}); the sink refuses records until restarted`,
        );
        this.options.log(this.syncError.message);
        throw this.syncError;
      })
      .finally(() => {
        this.syncing = undefined;
      });
    return this.syncing;
  }
}

interface Recovered {
  segment: number;
  segmentSize: number;
  size: number;
  prev: string;
  tree: CompactRange;
  /** The Merkle root of the first `checkpointSize` records, when the log holds that many. */
  rootAtCheckpoint: Buffer | undefined;
}

/**
 * Refuse to continue a log whose records no longer hash to the root its latest checkpoint signed.
 * Without this, a sink restarted on a log rewritten under existing checkpoints (two records
 * swapped and every prev/hash recomputed) would sign new checkpoints over the rewritten history,
 * inconsistent with the ones it signed before. The checkpoint must carry this sink's own valid
 * signature: a forged or replaced one proves nothing (and a log cannot change keys, as verify
 * checks every checkpoint with one key). What this cannot see: a rewrite that also deletes or
 * re-signs the checkpoints (README "What checkpoints protect").
 */
async function checkHistory(dir: string, origin: string, key: SigningKey, size: number, root: Buffer): Promise<void> {
  const name = join(CHECKPOINTS, checkpointName(size));
  const hint = `run "portcullis audit verify ${dir} --pubkey FILE" (and --against any checkpoints kept elsewhere)`;
  const opened = await openCheckpoint(readFileSync(join(dir, name), 'utf8'), key);
  const wrong =
    'error' in opened
      ? opened.error
      : opened.origin !== origin
        ? `its origin "${opened.origin}" is not this log's origin "${origin}"`
        : opened.size !== size
          ? `it says tree size ${opened.size}, but its file name says ${size}`
          : undefined;
  if (wrong !== undefined)
    throw new PcxError(
      'PCX_AUDIT_BAD_CHECKPOINT',
      `the latest checkpoint ${name} of the log in ${dir} cannot be trusted: ${wrong}; the sink will not sign ` +
        `over it`,
      { hint: `${hint}; a log is continued only with the key that signed it` },
    );
  if (!('error' in opened) && !opened.root.equals(root))
    throw new PcxError(
      'PCX_AUDIT_HISTORY_REWRITTEN',
      `the records 0..${size - 1} of the log in ${dir} do not hash to the root that its checkpoint ${name} ` +
        `signed: the history was rewritten (records changed, swapped, inserted or removed and the chain ` +
        `recomputed); the sink will not sign over it`,
      { hint: `${hint} to find where; keep the directory as evidence and start a new log with another --dir` },
    );
}

/**
 * Rebuild the writer's state from the segments (count, last hash, Merkle compact range) and
 * repair a torn tail: bytes after the last newline of the last segment are a write cut short by
 * a crash, never an acknowledged record (acks follow complete writes), so they are cut off.
 */
function recover(dir: string, log: (m: string) => void, checkpointSize: number): Recovered {
  const segDir = join(dir, SEGMENTS);
  const numbers = readdirSync(segDir)
    .filter((n) => SEGMENT_RE.test(n))
    .map((n) => Number(SEGMENT_RE.exec(n)![1]))
    .sort((a, b) => a - b);
  const tree = new CompactRange();
  let size = 0;
  let lastLine = '';
  let segmentSize = 0;
  let rootAtCheckpoint = checkpointSize === 0 ? tree.root() : undefined;
  if (numbers.length === 0) return { segment: 1, segmentSize: 0, size: 0, prev: GENESIS_PREV, tree, rootAtCheckpoint };
  for (let i = 0; i < numbers.length; i++) {
    const path = segmentPath(dir, numbers[i]!);
    let buf = readFileSync(path);
    const end = buf.lastIndexOf(0x0a) + 1;
    if (end < buf.length) {
      if (i < numbers.length - 1)
        throw corrupt(dir, `segment ${path} does not end with a complete line but is not the last segment`);
      log(`repaired a torn last line in ${path}: cut ${buf.length - end} bytes of an incomplete write`);
      truncateSync(path, end);
      const fd = openSync(path, 'r+');
      fsyncSync(fd);
      closeSync(fd);
      buf = buf.subarray(0, end);
    }
    let start = 0;
    while (start < buf.length) {
      const nl = buf.indexOf(0x0a, start);
      const line = buf.subarray(start, nl);
      tree.append(leafHashInPlace(buf, start, nl));
      size++;
      if (size === checkpointSize) rootAtCheckpoint = tree.root();
      if (nl + 1 === buf.length) lastLine = line.toString('utf8');
      start = nl + 1;
    }
    segmentSize = buf.length;
  }
  let prev = GENESIS_PREV;
  if (size > 0) {
    let last: { seq?: unknown; hash?: unknown };
    try {
      last = JSON.parse(lastLine) as typeof last;
    } catch {
      throw corrupt(dir, 'the last record is not JSON');
    }
    if (last.seq !== size - 1 || typeof last.hash !== 'string')
      throw corrupt(dir, `the log holds ${size} lines but the last record says seq ${String(last.seq)}`);
    prev = last.hash;
  }
  return { segment: numbers.at(-1)!, segmentSize, size, prev, tree, rootAtCheckpoint };
}

function corrupt(dir: string, what: string): PcxError {
  return new PcxError('PCX_AUDIT_LOG_CORRUPT', `the audit log in ${dir} is damaged: ${what}`, {
    hint: `run "portcullis audit verify ${dir}" to find where; the sink will not append to a damaged log`,
  });
}

/** Write a small file atomically and durably (temp file, fsync, rename, fsync the directory). */
function writeDurably(dir: string, name: string, text: string): void {
  const tmp = join(dir, `.${name}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o644 });
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(dir, name));
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

/** writeDurably without blocking the event loop (checkpoints are written beside the write path). */
async function writeDurablyAsync(dir: string, name: string, text: string): Promise<void> {
  const tmp = join(dir, `.${name}.tmp`);
  try {
    const f = await open(tmp, 'w', 0o644);
    try {
      await f.writeFile(text);
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(tmp, join(dir, name));
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
