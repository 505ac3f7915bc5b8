import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditRecordInput } from '@portcullis/protocol';
import { generateKey, parseSigningKey, type SigningKey } from '../src/note.js';

export function tempDir(t: { teardown(fn: () => void): void }, prefix = 'pcx-audit-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function newKey(name = 'test-log'): Promise<{ key: SigningKey; publicKey: string; privateKey: string }> {
  const k = await generateKey(name);
  return { key: await parseSigningKey(k.privateKey), ...k };
}

export function sampleRecord(i: number): AuditRecordInput {
  return {
    source: i % 3 === 0 ? 'egress' : 'fsgate',
    event_id: `evt-${i}`,
    principal: { id: `agent-${i % 4}`, roles: ['worker'] },
    action: i % 2 === 0 ? 'http.request' : 'fs.read',
    resource: { host: 'api.example.com', path: `/v1/items/${i}` },
    context: { project: 'p1', session: 's1' },
    decision: i % 5 === 0 ? 'deny' : 'allow',
    reasons: [{ effect: i % 5 === 0 ? 'deny' : 'allow', policy: 'base', rule: `r${i % 7}` }],
    outcome: { status: 200, bytes: i * 10 },
  };
}
