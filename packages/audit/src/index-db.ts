/**
 * The query index: DIR/index.sqlite (better-sqlite3), built from the segments and caught up
 * incrementally before each query. Never the source of truth: it can be deleted at any time and
 * is rebuilt from the log; if the log no longer matches what was indexed (the last indexed
 * record's hash differs), it is rebuilt from scratch.
 */
import { existsSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { PcxError, type AuditRecord } from '@portcullis/protocol';
import { INDEX_FILE, SEGMENTS, segmentName } from './format.js';
import { listSegments } from './verify.js';

export interface QueryFilter {
  /** Inclusive lower bound on `time` (RFC 3339). */
  since?: string;
  /** Exclusive upper bound on `time`. */
  until?: string;
  principal?: string;
  action?: string;
  decision?: string;
  source?: string;
  /** At most this many records, the most recent ones. Default 1000. */
  limit?: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, principal TEXT, action TEXT,
  decision TEXT, source TEXT, line TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_time ON records(time_ms);
CREATE INDEX IF NOT EXISTS records_principal ON records(principal, time_ms);
CREATE INDEX IF NOT EXISTS records_action ON records(action, time_ms);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
`;

type Db = InstanceType<typeof Database>;

export interface IndexUpdate {
  added: number;
  rebuilt: boolean;
}

/** Open the index and bring it up to date with the log. */
export function openIndex(dir: string, options: { rebuild?: boolean } = {}): { db: Db; update: IndexUpdate } {
  try {
    return openIndexUnchecked(dir, options);
  } catch (e) {
    if (e instanceof PcxError) throw e;
    throw new PcxError(
      'PCX_AUDIT_INDEX',
      `cannot open or update the index ${join(dir, INDEX_FILE)}: ${(e as Error).message}`,
      { hint: 'the index needs a writable log directory; "--rebuild" recreates it' },
    );
  }
}

function openIndexUnchecked(dir: string, options: { rebuild?: boolean }): { db: Db; update: IndexUpdate } {
  listSegments(dir); // refuses a directory that is not a log before creating anything in it
  const path = join(dir, INDEX_FILE);
  if (options.rebuild && existsSync(path)) unlinkSync(path);
  let db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(SCHEMA);
  let update = catchUp(db, dir);
  if (update === 'stale') {
    db.close();
    unlinkSync(path);
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec(SCHEMA);
    update = catchUp(db, dir);
    if (update === 'stale') {
      db.close();
      throw new PcxError(
        'PCX_AUDIT_LOG_CORRUPT',
        `the log in ${dir} has a line that is not a record, so it cannot be indexed`,
        { hint: `run "portcullis audit verify ${dir}" to find where` },
      );
    }
    update.rebuilt = true;
  }
  return { db, update: update as IndexUpdate };
}

function catchUp(db: Db, dir: string): IndexUpdate | 'stale' {
  const get = (k: string): string | undefined =>
    (db.prepare('SELECT v FROM meta WHERE k = ?').get(k) as { v: string } | undefined)?.v;
  let segment = Number(get('segment') ?? 1);
  let offset = Number(get('offset') ?? 0);
  const lastHash = get('last_hash');
  const count = (db.prepare('SELECT COUNT(*) AS n FROM records').get() as { n: number }).n;
  if (count > 0) {
    const row = db.prepare('SELECT line FROM records ORDER BY seq DESC LIMIT 1').get() as { line: string };
    const file = join(dir, SEGMENTS, segmentName(segment));
    // The indexed prefix must still be the log's prefix: its last line must sit right before `offset`.
    if (!existsSync(file) || statSync(file).size < offset) return 'stale';
    const tail = readFileSync(file)
      .subarray(Math.max(0, offset - Buffer.byteLength(row.line) - 1), offset)
      .toString('utf8');
    if (tail !== row.line + '\n' || (JSON.parse(row.line) as AuditRecord).hash !== lastHash) return 'stale';
  }
  const insert = db.prepare(
    'INSERT INTO records (seq, time_ms, principal, action, decision, source, line) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const setMeta = db.prepare('INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)');
  let added = 0;
  const segments = listSegments(dir).filter((n) => n >= segment);
  const tx = db.transaction(() => {
    let last: AuditRecord | undefined;
    for (const n of segments) {
      if (n !== segment) {
        segment = n;
        offset = 0;
      }
      const buf = readFileSync(join(dir, SEGMENTS, segmentName(n)));
      let start = offset;
      for (let nl = buf.indexOf(0x0a, start); nl >= 0; nl = buf.indexOf(0x0a, start)) {
        const line = buf.toString('utf8', start, nl);
        const r = JSON.parse(line) as AuditRecord;
        insert.run(r.seq, Date.parse(r.time), r.principal?.id ?? null, r.action, r.decision, r.source, line);
        last = r;
        added++;
        start = nl + 1;
      }
      offset = start;
    }
    setMeta.run('segment', String(segment));
    setMeta.run('offset', String(offset));
    if (last) setMeta.run('last_hash', last.hash);
  });
  try {
    tx();
  } catch {
    return 'stale';
  }
  return { added, rebuilt: false };
}

export function queryIndex(db: Db, filter: QueryFilter): string[] {
  const where: string[] = [];
  const args: (string | number)[] = [];
  if (filter.since !== undefined) {
    where.push('time_ms >= ?');
    args.push(Date.parse(filter.since));
  }
  if (filter.until !== undefined) {
    where.push('time_ms < ?');
    args.push(Date.parse(filter.until));
  }
  for (const k of ['principal', 'action', 'decision', 'source'] as const) {
    if (filter[k] !== undefined) {
      where.push(`${k} = ?`);
      args.push(filter[k]!);
    }
  }
  const sql =
    `SELECT line FROM (SELECT seq, line FROM records ` +
    `${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY seq DESC LIMIT ?) ORDER BY seq`;
  args.push(filter.limit ?? 1000);
  return (db.prepare(sql).all(...args) as { line: string }[]).map((r) => r.line);
}
