/**
 * The PDP daemon shell: load the policy set, lease keys and revocation list; watch them and
 * reload on change (compile first, then swap atomically; a failed compile keeps the last good
 * set); serve the socket; optionally serve metrics; drain on close.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { compile, renderDiagnostic } from '@portcullis/policy';
import { isPcxError, PcxError, type PcxCode } from '@portcullis/protocol';
import { Engine, type Health } from './engine.js';
import { LeaseVerifier, parseLeaseKeys, parseRevoked } from './leases.js';
import { PdpMetrics, serveMetrics, type MetricsAddress } from './metrics.js';
import { PdpServer, type DrainOptions, type Log } from './server.js';
import { readPolicySources, type PolicySource } from './sources.js';
import { keepVersion, openVersionsDir } from './versions.js';
import { watchPaths, type Watcher } from './watch.js';

/** Reads of a changed policy set before giving up on it settling, and the pause between them. */
const SETTLE_READS = 5;
const SETTLE_MS = 25;

export interface PdpOptions {
  /** Policy file or directory. */
  policyPath: string;
  socketPath: string;
  /** JWKS file of the public keys that sign leases. Without it every lease is ignored. */
  leaseKeysPath?: string;
  /** Revocation list: one lease jti per line. */
  revokedPath?: string;
  /** Serve Prometheus metrics here (already checked to be loopback unless allowed). */
  metrics?: MetricsAddress;
  /** Where messages go. Default: stderr. Never receives a lease token. */
  log?: Log;
  /** Safety-net poll interval for the watched files. Default 2000 ms. */
  pollMs?: number;
  /** Clock skew allowed on lease exp/nbf, seconds. Default 5. */
  leaseClockToleranceSec?: number;
  /**
   * Directory where every policy version is kept (content-addressed, see versions.ts) before it
   * is served. Default: none kept — `portcullis pdp` always passes one (--versions-dir, default
   * defaultVersionsDir()).
   */
  versionsDir?: string;
}

export interface PdpHandle {
  readonly socketPath: string;
  /** The bound metrics port, when metrics are served. */
  readonly metricsPort: number | undefined;
  health(): Health;
  /** Re-read everything now (the watcher does this on change). */
  reload(): Promise<void>;
  /** Stop accepting, answer what is in flight, close. */
  close(options?: DrainOptions): Promise<void>;
}

/** Log lines on a stream: "portcullis pdp: [level: ]message". */
export function streamLog(stream: NodeJS.WritableStream): Log {
  return (level, message) => void stream.write(`portcullis pdp: ${level === 'info' ? '' : `${level}: `}${message}\n`);
}

/** Reload a file only when its content changed, one reload at a time, a change during one rerunning it. */
function serialized(load: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again = false;
  const run = async (): Promise<void> => {
    do {
      again = false;
      await load();
    } while (again);
  };
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = run().finally(() => (running = undefined));
    return running;
  };
}

export async function startPdp(options: PdpOptions): Promise<PdpHandle> {
  const log = options.log ?? streamLog(process.stderr);
  const metrics = new PdpMetrics();
  const leases = new LeaseVerifier({
    clockToleranceSec: options.leaseClockToleranceSec,
    onGrantError: (jti, messages) =>
      log('warn', `lease ${jti} ignored: its rules do not compile: ${messages.join('; ')}`),
  });
  const engine = new Engine(leases);

  let policyFingerprint: string | undefined;
  const fingerprint = (sources: Array<{ path: string; text: string }>): string => {
    const hash = createHash('sha256');
    for (const s of sources) hash.update(s.path).update('\0').update(s.text).update('\0');
    return hash.digest('hex');
  };
  const loadPolicy = async (): Promise<void> => {
    let sources: PolicySource[];
    let fp: string;
    try {
      sources = await readPolicySources(options.policyPath);
      fp = fingerprint(sources);
      // A changed set is read again after a short pause until two reads agree: a file being
      // rewritten in place (truncate, then write) must not be compiled half-written — its empty
      // prefix would compile to a valid deny-everything set.
      for (let i = 0; fp !== policyFingerprint && i < SETTLE_READS; i++) {
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        const again = await readPolicySources(options.policyPath);
        const fp2 = fingerprint(again);
        if (fp2 === fp) break;
        sources = again;
        fp = fp2;
      }
    } catch (e) {
      const error = { code: isPcxError(e) ? e.code : 'PCX_POLICY_PATH', message: (e as Error).message };
      const efp = `error:${error.message}`;
      if (efp === policyFingerprint) return; // same failure as last time: already reported
      policyFingerprint = efp;
      return failReload(error, []);
    }
    if (fp === policyFingerprint) return;
    policyFingerprint = fp;
    if (sources.length === 0) {
      return failReload({ code: 'PCX_POLICY_EMPTY', message: `no *.pol files found under ${options.policyPath}` }, []);
    }
    const texts = new Map(sources.map((s) => [s.path, s.text]));
    const { policy, diagnostics } = compile(sources);
    const rendered = diagnostics.map((d) => renderDiagnostic(d, texts.get(d.file)));
    const errors = diagnostics.filter((d) => d.severity === 'error').length;
    if (!policy || errors > 0) {
      const keeping = engine.policy ? `keeping ${engine.policy.version}` : 'no policy is in force';
      return failReload(
        { code: 'PCX_POLICY_COMPILE', message: `${options.policyPath} has ${errors} error(s); ${keeping}` },
        rendered,
      );
    }
    if (options.versionsDir !== undefined) {
      // Kept before served: a decision whose version was not kept could never be replayed exactly.
      try {
        await keepVersion(options.versionsDir, policy.version, sources);
      } catch (e) {
        const keeping = engine.policy ? `keeping ${engine.policy.version}` : 'no policy is in force';
        return failReload({ code: 'PCX_PDP_VERSION_STORE', message: `${(e as Error).message}; ${keeping}` }, []);
      }
    }
    engine.install({ policy, files: sources.length, loadedAt: new Date().toISOString() }, rendered);
    metrics.reloads.ok++;
    metrics.policyLoaded = 1;
    for (const line of rendered) log('warn', line);
    log('info', `loaded policy ${policy.version} (${policy.ruleCount} rules from ${sources.length} file(s))`);
  };
  const failReload = (error: { code: PcxCode; message: string }, rendered: string[]): void => {
    engine.reject(error, rendered);
    metrics.reloads.failed++;
    log('error', `policy reload failed: ${error.message}`);
    for (const line of rendered) log('error', line);
  };

  // Keys and revocations: invalid at start is an operator error (refuse to start); invalid on a
  // later change keeps the last good content, because a half-written file must not open or
  // close the gate by accident.
  const fileLoader = (path: string, what: string, apply: (text: string) => void) => {
    let last: string | undefined;
    return async (initial = false): Promise<void> => {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
        if (text === last) return;
        apply(text);
        last = text;
        if (!initial) log('info', `reloaded ${what} from ${path}`);
      } catch (e) {
        const message = isPcxError(e)
          ? e.message
          : `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
        if (initial) throw new PcxError(isPcxError(e) ? e.code : 'PCX_PDP_FILE', message);
        if (`error:${message}` === last) return;
        last = `error:${message}`;
        log('error', `${message}; keeping the previous ${what}`);
      }
    };
  };
  const loadKeys = options.leaseKeysPath
    ? fileLoader(options.leaseKeysPath, 'lease keys', (t) => leases.setKeys(parseLeaseKeys(t, options.leaseKeysPath!)))
    : undefined;
  const loadRevoked = options.revokedPath
    ? fileLoader(options.revokedPath, 'revocation list', (t) => leases.setRevoked(parseRevoked(t)))
    : undefined;
  await loadKeys?.(true);
  await loadRevoked?.(true);
  if (options.versionsDir !== undefined) await openVersionsDir(options.versionsDir);

  const reloadPolicy = serialized(loadPolicy);
  await reloadPolicy();

  const server = await PdpServer.listen({ socketPath: options.socketPath, engine, metrics, log });
  let metricsServer: { server: Server; port: number } | undefined;
  try {
    if (options.metrics) metricsServer = await serveMetrics(metrics, options.metrics);
  } catch (e) {
    await server.close({ drainTimeoutMs: 0 });
    throw e;
  }

  const watchers: Watcher[] = [watchPaths([options.policyPath], () => void reloadPolicy(), { pollMs: options.pollMs })];
  const reloadKeys = loadKeys && serialized(() => loadKeys());
  const reloadRevoked = loadRevoked && serialized(() => loadRevoked());
  if (reloadKeys)
    watchers.push(watchPaths([options.leaseKeysPath!], () => void reloadKeys(), { pollMs: options.pollMs }));
  if (reloadRevoked)
    watchers.push(watchPaths([options.revokedPath!], () => void reloadRevoked(), { pollMs: options.pollMs }));

  const metricsAt = metricsServer ? `; metrics on http://${options.metrics!.host}:${metricsServer.port}/metrics` : '';
  log('info', `listening on ${options.socketPath}${metricsAt}`);

  return {
    socketPath: options.socketPath,
    metricsPort: metricsServer?.port,
    health: () => engine.health(),
    reload: async () => {
      await Promise.all([reloadPolicy(), reloadKeys?.(), reloadRevoked?.()]);
    },
    close: async (drain?: DrainOptions) => {
      for (const w of watchers) w.close();
      await server.close(drain);
      if (metricsServer) {
        metricsServer.server.closeAllConnections();
        await new Promise<void>((r) => metricsServer!.server.close(() => r()));
      }
    },
  };
}
