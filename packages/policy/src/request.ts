/**
 * Request validation and normalisation (precise rules 1, 2, 3, 5, 6, 7, 8, 11, 12, 17).
 * Never throws: any input either becomes a normalised request or an ErrorInfo saying exactly
 * what is wrong. Hot path: one small array per request for the resource slots; already
 * normalised hosts and paths are returned as they are.
 */
import type { ErrorInfo } from '@portcullis/protocol';
import type { PcxCode } from '@portcullis/protocol/codes';
import type { ActionSchema, Schema } from './model.js';
import type { Ip } from './values.js';
import { decodeUrlPath, normalizeHost, normalizePath, parseIp } from './values.js';

export interface NormalRequest {
  action: string;
  schema: ActionSchema;
  /** Resource attributes in the order of schema.list, normalised; undefined when absent. */
  res: unknown[];
  principal: Record<string, unknown>;
  id: string;
  /** principal.roles with every role they extend (transitively), no duplicates. */
  roles: readonly string[];
  context: Record<string, unknown> | undefined;
  project: string | undefined;
  blueprint: string | undefined;
  session: string | undefined;
}

const hasOwn = Object.prototype.hasOwnProperty;
/** An own property only: `principal.constructor` must not read Object.prototype. */
export function own(o: Record<string, unknown> | undefined, k: string): unknown {
  return o !== undefined && hasOwn.call(o, k) ? o[k] : undefined;
}

/**
 * A reader for attribute `k`. Hot path: names that Object.prototype does not have are read
 * directly (for JSON objects that equals an own-property read, without the call); the few
 * that it has (constructor, toString, __proto__, …) go through hasOwnProperty.
 */
export function reader(k: string): (o: Record<string, unknown> | undefined) => unknown {
  if (k in Object.prototype) return (o) => own(o, k);
  return (o) => (o === undefined ? undefined : o[k]);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function err(code: PcxCode, message: string): ErrorInfo {
  return { code, message };
}

function preview(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 64 ? v.slice(0, 64) + '…' : v);
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : `${typeof v === 'boolean' ? 'a bool' : `a ${typeof v}`} (${String(v)})`;
}

const EMPTY: readonly string[] = Object.freeze([]);

// The fixed keys below (principal, action, id, roles, …) are not Object.prototype properties,
// so reading them directly equals an own-property read for JSON objects.
export function normalizeRequest(
  req: unknown,
  schema: Schema,
  roleClosure: ReadonlyMap<string, readonly string[]>,
): NormalRequest | ErrorInfo {
  if (!isObject(req))
    return err(
      'PCX_REQ_NOT_OBJECT',
      `a request is a JSON object with principal, action, resource and context; got ${preview(req)}`,
    );
  const principal = req.principal;
  if (!isObject(principal))
    return err(
      principal === undefined ? 'PCX_REQ_MISSING_ATTRIBUTE' : 'PCX_REQ_BAD_TYPE',
      principal === undefined
        ? 'the request has no principal (an object with at least "id")'
        : `principal must be an object, got ${preview(principal)}`,
    );
  const id = principal.id;
  if (typeof id !== 'string')
    return err(
      id === undefined ? 'PCX_REQ_MISSING_ATTRIBUTE' : 'PCX_REQ_BAD_TYPE',
      id === undefined ? 'principal.id is required (a string)' : `principal.id must be a string, got ${preview(id)}`,
    );
  const rawRoles = principal.roles;
  let roles: readonly string[] = EMPTY;
  if (rawRoles !== undefined) {
    if (!Array.isArray(rawRoles))
      return err('PCX_REQ_BAD_TYPE', `principal.roles must be a list of role names, got ${preview(rawRoles)}`);
    for (let i = 0; i < rawRoles.length; i++) {
      if (typeof rawRoles[i] !== 'string')
        return err('PCX_REQ_BAD_TYPE', `principal.roles[${i}] must be a string, got ${preview(rawRoles[i])}`);
    }
    roles = closeRoles(rawRoles as string[], roleClosure);
  }
  const action = req.action;
  if (typeof action !== 'string')
    return err(
      action === undefined ? 'PCX_REQ_MISSING_ATTRIBUTE' : 'PCX_REQ_BAD_TYPE',
      action === undefined ? 'the request has no action' : `action must be a string, got ${preview(action)}`,
    );
  const as = schema.actions.get(action);
  if (as === undefined)
    return err(
      'PCX_REQ_UNKNOWN_ACTION',
      `unknown action ${preview(action)}: it is neither built in nor declared with \`action\` in the policy set`,
    );
  const resource = req.resource;
  if (resource !== undefined && !isObject(resource))
    return err('PCX_REQ_BAD_TYPE', `resource must be an object, got ${preview(resource)}`);
  const context = req.context;
  if (context !== undefined && !isObject(context))
    return err('PCX_REQ_BAD_TYPE', `context must be an object, got ${preview(context)}`);
  let project: string | undefined;
  let blueprint: string | undefined;
  let session: string | undefined;
  if (context !== undefined) {
    const p = context.project;
    const b = context.blueprint;
    const s = context.session;
    if (p !== undefined && typeof p !== 'string')
      return err('PCX_REQ_BAD_TYPE', `context.project must be a string, got ${preview(p)}`);
    if (b !== undefined && typeof b !== 'string')
      return err('PCX_REQ_BAD_TYPE', `context.blueprint must be a string, got ${preview(b)}`);
    if (s !== undefined && typeof s !== 'string')
      return err('PCX_REQ_BAD_TYPE', `context.session must be a string, got ${preview(s)}`);
    const leases = context.leases;
    if (leases !== undefined && (!Array.isArray(leases) || leases.some((l) => typeof l !== 'string')))
      return err('PCX_REQ_BAD_TYPE', 'context.leases must be a list of lease tokens (strings)');
    project = p as string | undefined;
    blueprint = b as string | undefined;
    session = s as string | undefined;
  }
  // Indexed like as.list (a small packed array); getters map a global slot through as.local.
  const list = as.list;
  const res: unknown[] = [];
  for (let i = 0; i < list.length; i++) {
    const at = list[i]!;
    const v = resource === undefined ? undefined : at.read(resource);
    res.push(undefined);
    if (v === undefined) {
      if (at.required)
        return err('PCX_REQ_MISSING_ATTRIBUTE', `resource.${at.name} (${at.type}) is required for ${action}`);
      continue;
    }
    const n = normalizeValue(v, at.type, action === 'net.http' && at.name === 'path');
    if (n instanceof Problem) return err(n.code, `resource.${at.name}: ${n.problem}`);
    res[i] = n;
  }
  return { action, schema: as, res, principal, id, roles, context, project, blueprint, session };
}

/** A value that failed its type or normalisation (a class, so no request value can pose as one). */
class Problem {
  constructor(
    readonly code: PcxCode,
    readonly problem: string,
  ) {}
}

function normalizeValue(v: unknown, type: string, urlPath: boolean): unknown {
  switch (type) {
    case 'string':
      return typeof v === 'string' ? v : new Problem('PCX_REQ_BAD_TYPE', `expected a string, got ${preview(v)}`);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v)
        ? v
        : new Problem('PCX_REQ_BAD_TYPE', `expected a number, got ${preview(v)}`);
    case 'bool':
      return typeof v === 'boolean' ? v : new Problem('PCX_REQ_BAD_TYPE', `expected true or false, got ${preview(v)}`);
    case 'list':
      return Array.isArray(v) ? v : new Problem('PCX_REQ_BAD_TYPE', `expected a list, got ${preview(v)}`);
    case 'host': {
      if (typeof v !== 'string')
        return new Problem('PCX_REQ_BAD_TYPE', `expected a host name (string), got ${preview(v)}`);
      const h = v.length > 1024 ? undefined : normalizeHost(v);
      return (
        h ??
        new Problem(
          'PCX_REQ_BAD_HOST',
          `${preview(v)} is not a valid host: labels of letters, digits, - and _ (IDNs are converted), or an IP ` +
            `literal; no port, brackets or empty labels`,
        )
      );
    }
    case 'path': {
      if (typeof v !== 'string')
        return new Problem('PCX_REQ_BAD_TYPE', `expected an absolute path (string), got ${preview(v)}`);
      let p: string | undefined = v;
      if (urlPath) {
        p = decodeUrlPath(v);
        if (p === undefined)
          return new Problem('PCX_REQ_BAD_PATH', `${preview(v)} has a bad percent-escape or encodes "/", "\\" or NUL`);
      }
      const n = normalizePath(p);
      return (
        n ??
        new Problem(
          'PCX_REQ_BAD_PATH',
          `${preview(v)} is not a valid path: it must be absolute, without NUL, and must not climb above /`,
        )
      );
    }
    case 'ip': {
      if (typeof v !== 'string')
        return new Problem('PCX_REQ_BAD_TYPE', `expected an IP address (string), got ${preview(v)}`);
      const ip: Ip | undefined = parseIp(v);
      return (
        ip ?? new Problem('PCX_REQ_BAD_IP', `${preview(v)} is not an IPv4 or IPv6 address (IPv4 without leading zeros)`)
      );
    }
  }
  return v;
}

function closeRoles(roles: string[], closure: ReadonlyMap<string, readonly string[]>): readonly string[] {
  if (roles.length === 1) return closure.get(roles[0]!) ?? roles;
  const out: string[] = [];
  for (const r of roles) {
    const c = closure.get(r);
    if (c === undefined) {
      if (!out.includes(r)) out.push(r);
    } else for (const x of c) if (!out.includes(x)) out.push(x);
  }
  return out;
}
