/**
 * The single-writer lock on a log directory: DIR/LOCK created with O_EXCL holding the owner's
 * pid. A lock whose pid no longer runs is stale (the sink was killed) and is taken over; a live
 * owner makes the second sink refuse to start, so two sinks never write one log.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync, constants } from 'node:fs';
import { join } from 'node:path';
import { PcxError } from '@portcullis/protocol';
import { LOCK_FILE } from './format.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else — still alive.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Locks this process holds. A lock file naming our own pid but not in this set was left by an
// earlier process that had the same pid (common in containers, where the sink is often pid 1).
const held = new Set<string>();

export interface DirLock {
  release(): void;
}

export function lockDir(dir: string): DirLock {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new PcxError('PCX_AUDIT_DIR_UNWRITABLE', `cannot create ${path}: ${(e as NodeJS.ErrnoException).code}`, {
          hint: 'the audit directory must be writable by the sink',
        });
      }
      let owner = NaN;
      try {
        owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
      } catch {
        continue; // removed between our open and read: try again
      }
      const ours = owner === process.pid;
      if ((ours && held.has(path)) || (!ours && Number.isSafeInteger(owner) && owner > 0 && alive(owner))) {
        throw new PcxError('PCX_AUDIT_LOCKED', `another audit sink (pid ${owner}) is writing ${dir}`, {
          hint: 'a log has exactly one writer; stop the other sink or use another --dir',
        });
      }
      // Stale (dead owner, or an empty file left by a crash between create and write).
      try {
        unlinkSync(path);
      } catch {
        /* someone else took it over; the next O_EXCL decides */
      }
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    held.add(path);
    return {
      release() {
        held.delete(path);
        try {
          if (Number.parseInt(readFileSync(path, 'utf8'), 10) === process.pid) unlinkSync(path);
        } catch {
          /* already gone */
        }
      },
    };
  }
  throw new PcxError('PCX_AUDIT_LOCKED', `could not take the lock ${path}: it keeps changing hands`);
}
