/**
 * The PDP daemon shell: load the policy set, lease keys and revocation list; watch them and
 * reload on change (compile first, then swap atomically; a failed compile keeps the last good
 * set); serve the socket; optionally serve metrics; drain on close.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { Server } from 'node:http';
import { compile, renderDiagnostic } from '@portcullis/policy';
import { createLogger, isPcxError, isTokenName, PcxError, type PcxCode, parseTrustedKeys } from '@portcullis/protocol';
import { Engine, type Health, type TrustFileStatus } from './engine.js';
import { LeaseVerifier, RevocationList } from './leases.js';
import { PdpMetrics, serveMetrics, type MetricsAddress } from './metrics.js';
import { PdpServer, type DrainOptions, type Log } from './server.js';
import { readPolicySources, readSettled, type PolicySource } from './sources.js';
import { keepVersion, openVersionsDir } from './versions.js';
import { watchPaths, type Watcher } from './watch.js';

/** The largest JWKS or revocation list read (a revocation line is at most ~150 bytes: ~100k entries). */
const MAX_TRUST_FILE_BYTES = 16 * 1024 * 1024;

export interface PdpOptions {
  /** Policy file or directory. */
  policyPath: string;
  socketPath: string;
  /** JWKS file of the public keys that sign leases and identity tokens. Without it every one is ignored. */
  leaseKeysPath?: string;
  /** The audience leases and identity tokens must name (`aud`); required with leaseKeysPath. */
  leaseAudience?: string;
  /** Revocation list: `jti` or `jti exp` per line. */
  revokedPath?: string;
  /** Serve Prometheus metrics here (already checked to be loopback unless allowed). */
  metrics?: MetricsAddress;
  /** Where messages go. Default: stderr. Never receives a lease token. */
  log?: Log;
  /** Safety-net poll interval for the watched files. Default 2000 ms. */
  pollMs?: number;
  /** Clock skew allowed on token exp, nbf and iat, in seconds. Default 60. */
  leaseClockSkewSec?: number;
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

/** The PDP's log on a stream: protocol's JSON lines, `"daemon": "pdp"`. */
export function streamLog(stream: NodeJS.WritableStream): Log {
  return createLogger({ daemon: 'pdp', stream });
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
  if (options.leaseKeysPath !== undefined && options.leaseAudience === undefined)
    throw new PcxError(
      'PCX_PDP_LEASE_AUDIENCE',
      'lease keys need an audience: leases and identity tokens must name one',
      {
        hint: 'pass --lease-audience NAME (the same name `portcullis lease issue --audience` writes)',
      },
    );
  if (options.leaseAudience !== undefined && !isTokenName(options.leaseAudience))
    throw new PcxError(
      'PCX_PDP_LEASE_AUDIENCE',
      `audience "${options.leaseAudience}" is not 1-256 visible ASCII characters`,
    );
  const metrics = new PdpMetrics();
  const leases = new LeaseVerifier({
    audience: options.leaseAudience,
    clockSkewSec: options.leaseClockSkewSec,
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
      ({ value: sources, fingerprint: fp } = await readSettled(
        () => readPolicySources(options.policyPath),
        fingerprint,
        policyFingerprint,
      ));
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

  // A trust file is read whole and kept parsed (the revocation list as a map): bounded here, so
  // that a runaway file cannot grow the daemon.
  const readTrustFile = async (path: string, what: string): Promise<string> => {
    const size = (await stat(path)).size;
    if (size > MAX_TRUST_FILE_BYTES)
      throw new PcxError(
        'PCX_PDP_FILE',
        `${what} ${path} is ${size} bytes; trust files are limited to ${MAX_TRUST_FILE_BYTES} bytes`,
      );
    return readFile(path, 'utf8');
  };
  // Trust files load like policies: a changed file is read until it settles; invalid at start
  // is an operator error (refuse to start); invalid later keeps the last good content, says why
  // in the log and in health, and never opens or closes the gate by accident.
  const trustLoader = (
    path: string,
    what: string,
    slot: 'keys' | 'revocation',
    apply: (text: string) => Promise<string | undefined>,
  ) => {
    let lastText: string | undefined;
    let lastError: string | undefined;
    const hash = (t: string): string => createHash('sha256').update(t).digest('hex');
    return async (initial = false): Promise<void> => {
      try {
        const { value: text } = await readSettled(() => readTrustFile(path, what), hash, lastText && hash(lastText));
        if (text === lastText) return;
        const warning = await apply(text);
        lastText = text;
        lastError = undefined;
        const status: TrustFileStatus = { ok: true, at: new Date().toISOString() };
        engine.trustFiles[slot] = warning ? { ...status, error: warning } : status;
        if (!initial) log('info', `reloaded ${what} from ${path}`);
        if (warning) log('warn', `${path}: ${warning}`);
      } catch (e) {
        const message = isPcxError(e)
          ? e.message
          : (e as NodeJS.ErrnoException).code !== undefined
            ? `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code}`
            : (e as Error).message;
        if (initial) throw new PcxError(isPcxError(e) ? e.code : 'PCX_PDP_FILE', message);
        engine.trustFiles[slot] = { ok: false, at: new Date().toISOString(), error: message };
        if (message === lastError) return;
        lastError = message;
        log('error', `${message}; keeping the previous ${what}`);
      }
    };
  };
  const loadKeys = options.leaseKeysPath
    ? trustLoader(options.leaseKeysPath, 'lease keys', 'keys', async (t) => {
        await leases.setKeys(parseTrustedKeys(t, options.leaseKeysPath!));
        return undefined;
      })
    : undefined;
  const loadRevoked = options.revokedPath
    ? trustLoader(options.revokedPath, 'revocation list', 'revocation', async (t) => {
        const next = RevocationList.parse(t, options.revokedPath!);
        const listed = next.size;
        // An empty file is far more often a failed write than a decision to un-revoke; refuse it
        // while any revoked token may be live (the kept entries would stay revoked anyway).
        const live = leases.liveRevoked();
        if (listed === 0 && live > 0)
          throw new PcxError(
            'PCX_PDP_REVOCATION_EMPTY',
            `the revocation list ${options.revokedPath} is empty but ${live} revoked token(s) may still be live`,
          );
        const kept = leases.setRevoked(next);
        return kept > 0
          ? `${kept} revoked id(s) are no longer listed; they stay revoked until their leases expire`
          : undefined;
      })
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

  const metricsUrl = metricsServer ? `http://${options.metrics!.host}:${metricsServer.port}/metrics` : undefined;
  log('info', `listening on ${options.socketPath}${metricsUrl ? `; metrics on ${metricsUrl}` : ''}`, {
    socket: options.socketPath,
    ...(metricsUrl ? { metrics: metricsUrl } : {}),
  });

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
