/**
 * Watching a path (a file or a directory tree) for changes, robust to the way Kubernetes
 * updates a ConfigMap volume: it writes a new `..2024_xx` directory, then atomically renames a
 * fresh `..data` symlink over the old one; the visible files are symlinks through `..data`.
 * An inotify watch on a file follows the inode it was set on, which the swap deletes, so:
 *  - we watch directories (the path itself when it is one, recursively, and its parent), never
 *    just a file inode, and re-arm the watches after each event (a swapped directory is new);
 *  - events are debounced (an editor's truncate+write, a swap's several renames → one reload);
 *  - a slow poll runs as a safety net, because fs.watch can miss events (a watched directory
 *    replaced, an NFS mount). The callback must be idempotent: callers compare content.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

export interface WatchOptions {
  /** Quiet time after the last event before the callback runs. Default 50 ms. */
  debounceMs?: number;
  /** Safety-net poll interval. Default 2000 ms; 0 disables it. */
  pollMs?: number;
}

export interface Watcher {
  close(): void;
}

export function watchPaths(paths: readonly string[], onChange: () => void, options: WatchOptions = {}): Watcher {
  const debounceMs = options.debounceMs ?? 50;
  const pollMs = options.pollMs ?? 2000;
  let watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const fire = (): void => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (!closed) void arm();
    }, debounceMs);
    timer.unref();
  };

  /** `names`: react only to these entries (a parent directory may hold busy unrelated files). */
  const tryWatch = (target: string, recursive: boolean, names: Set<string> | undefined): void => {
    try {
      const w = watch(target, { persistent: false, recursive }, (_event, name) => {
        // Kubernetes swaps `..data`: any `..` entry counts; so does an unnamed event.
        if (!names || name == null || names.has(name) || name.startsWith('..')) fire();
      });
      // A watched directory that disappears errors out; the next event or poll re-arms.
      w.on('error', () => w.close());
      watchers.push(w);
    } catch {
      // Missing for now (a ConfigMap not mounted yet): the poll notices when it appears.
    }
  };

  // Re-arming after every event (a swapped directory is a new inode), new watches first, then
  // the old ones closed, then one check: a change that lands before the new watches exist is
  // still seen by that check. The first arm's check covers changes since the caller's own read.
  let generation = 0;
  const arm = async (): Promise<void> => {
    const mine = ++generation;
    // directory → the names that matter in it (undefined: everything, recursively).
    const targets = new Map<string, Set<string> | undefined>();
    for (const p of paths) {
      const info = await stat(p).catch(() => undefined);
      if (info?.isDirectory()) targets.set(p, undefined);
      const parent = dirname(p);
      if (!targets.has(parent) || targets.get(parent) !== undefined)
        targets.set(parent, new Set([...(targets.get(parent) ?? []), basename(p)]));
    }
    if (closed || mine !== generation) return;
    const old = watchers;
    watchers = [];
    for (const [t, names] of targets) tryWatch(t, names === undefined, names);
    for (const w of old) w.close();
    onChange();
  };

  void arm();
  // The poll re-arms too: it revives watches on directories that disappeared and came back.
  const poll = pollMs > 0 ? setInterval(() => !closed && void arm(), pollMs) : undefined;
  poll?.unref();

  return {
    close(): void {
      closed = true;
      if (timer) clearTimeout(timer);
      if (poll) clearInterval(poll);
      for (const w of watchers) w.close();
      watchers = [];
    },
  };
}
