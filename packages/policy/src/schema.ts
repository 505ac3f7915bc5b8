/** Built-in actions and their resource attributes (dsl/LANGUAGE.md), plus custom `action` schemas. */
import type { ActionSchema, AttrType, Schema } from './model.js';
import { reader } from './request.js';

type Spec = Record<string, string>; // name → type, "!" suffix for required
const NET_CONNECT: Spec = { host: 'host!', port: 'number!', ip: 'ip' };
const NET_HTTP: Spec = { host: 'host!', port: 'number!', method: 'string!', path: 'path!', scheme: 'string', ip: 'ip' };
const FS: Spec = { path: 'path!' };
const CMD: Spec = { command: 'string!', args: 'list' };
// workspace: the vault's workspace the secret lives in (the vault always sends it).
const SECRET: Spec = { name: 'string!', workspace: 'string' };

export const BUILTIN_ACTIONS: Readonly<Record<string, Spec>> = {
  'net.connect': NET_CONNECT,
  'net.http': NET_HTTP,
  'fs.read': FS,
  'fs.write': FS,
  'fs.list': FS,
  'fs.delete': FS,
  'comms.send': { channel: 'string!', to: 'string', secrets: 'number', size: 'number' },
  'cmd.exec': CMD,
  'proc.spawn': CMD,
  'tool.call': { tool: 'string!', network: 'bool' },
  'stage.transition': { from: 'string!', to: 'string!' },
  'secret.read': SECRET,
  'secret.inject': SECRET,
};

export class SchemaBuilder {
  readonly schema: Schema = { actions: new Map(), slots: new Map() };

  constructor() {
    for (const [name, spec] of Object.entries(BUILTIN_ACTIONS)) {
      this.add(
        name,
        Object.entries(spec).map(([attr, t]) => ({
          name: attr,
          type: t.replace('!', '') as AttrType,
          required: t.endsWith('!'),
        })),
      );
    }
  }

  add(name: string, attrs: { name: string; type: AttrType; required: boolean }[]): ActionSchema {
    const a: ActionSchema = { name, attrs: new Map(), list: [], local: new Int16Array(0) };
    for (const at of attrs) {
      let slot = this.schema.slots.get(at.name);
      if (slot === undefined) {
        slot = this.schema.slots.size;
        this.schema.slots.set(at.name, slot);
      }
      const full = { ...at, slot, read: reader(at.name) };
      a.attrs.set(at.name, full);
      a.list.push(full);
    }
    this.schema.actions.set(name, a);
    // Slots grow as actions are added: rebuild every action's slot map.
    for (const x of this.schema.actions.values()) {
      x.local = new Int16Array(this.schema.slots.size).fill(-1);
      x.list.forEach((at, i) => {
        x.local[at.slot] = i;
      });
    }
    return a;
  }
}
