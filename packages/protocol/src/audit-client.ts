/**
 * The typed client a PEP uses to write audit records. Built on RpcClient (pooled, pipelined,
 * deadlines). A PEP lets a request through only after append() resolved: every failure — sink
 * down, timeout, refusal (full disk, invalid record), malformed answer — rejects with a PcxError,
 * and the PEP denies.
 *
 * Nothing here retries: the sink may have written a record whose ack was lost, and a retry
 * would log the event twice. Records are redacted here before they leave the process.
 */
import { isPcxCode } from './codes.js';
import { PcxError } from './errors.js';
import { RpcClient } from './rpc.js';
import { prepareAuditRecord, type AuditRecordInput } from './audit-record.js';

export interface AuditClientOptions {
  socketPath: string;
  /** Connections to spread appends over. Default 1 (pipelining makes one enough for most PEPs). */
  connections?: number;
  /** Per-append deadline in milliseconds. Default 1000: a durable ack waits for an fsync. */
  timeoutMs?: number;
}

export interface AuditAck {
  seq: number;
  hash: string;
}

export interface AuditHealth {
  /** Records in the log. */
  size: number;
  /** Whether the last write succeeded (false after e.g. a full disk, until a write succeeds again). */
  writable: boolean;
  mode: 'default' | 'durable';
}

const HEX64 = /^[0-9a-f]{64}$/;

export class AuditClient {
  private readonly rpc: RpcClient;

  constructor(options: AuditClientOptions) {
    this.rpc = new RpcClient({
      socketPath: options.socketPath,
      connections: options.connections ?? 1,
      timeoutMs: options.timeoutMs ?? 1000,
      peerName: 'audit sink',
    });
  }

  /**
   * Write one record; resolves once the sink acknowledged it (see packages/audit/README.md for what an ack guarantees).
   */
  async append(record: AuditRecordInput): Promise<AuditAck> {
    const prepared = prepareAuditRecord(record);
    const frame = await this.rpc.call({ record: prepared });
    if (frame.error !== undefined) throw refusal(frame.error);
    const ack = frame.ack as { seq?: unknown; hash?: unknown } | undefined;
    if (
      typeof ack !== 'object' ||
      ack === null ||
      !Number.isSafeInteger(ack.seq) ||
      typeof ack.hash !== 'string' ||
      !HEX64.test(ack.hash)
    ) {
      throw new PcxError('PCX_AUDIT_BAD_RESPONSE', 'audit sink sent an answer without a valid ack');
    }
    return { seq: ack.seq as number, hash: ack.hash };
  }

  async health(): Promise<AuditHealth> {
    const frame = await this.rpc.call({ health: true });
    if (frame.error !== undefined) throw refusal(frame.error);
    const h = frame.health as Partial<AuditHealth> | undefined;
    if (typeof h !== 'object' || h === null || typeof h.size !== 'number' || typeof h.writable !== 'boolean') {
      throw new PcxError('PCX_AUDIT_BAD_RESPONSE', 'audit sink sent a malformed health answer');
    }
    return { size: h.size, writable: h.writable, mode: h.mode === 'durable' ? 'durable' : 'default' };
  }

  close(): void {
    this.rpc.close();
  }
}

function refusal(error: unknown): PcxError {
  const e = error as { code?: unknown; message?: unknown };
  // The sink's own code when it is one we know; anything else a peer sends is not ours to repeat.
  const code = isPcxCode(e?.code) ? e.code : 'PCX_AUDIT_REFUSED';
  const message = typeof e?.message === 'string' ? e.message : 'no reason given';
  return new PcxError(code, `audit sink refused the record: ${message}`);
}
