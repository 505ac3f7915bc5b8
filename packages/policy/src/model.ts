/**
 * The checked model: what the checker produces from the AST and what both the decision-tree
 * compiler and the reference evaluator (the test oracle) consume. Literals are already resolved
 * (constants spliced) and normalised for the attribute's type.
 */
import type { Reason } from '@portcullis/protocol';
import type { EffectName, Loc, ScopeKind } from './ast.js';
import type { Cidr, Ip } from '@portcullis/protocol/ip';

export type AttrType = 'string' | 'number' | 'bool' | 'host' | 'path' | 'ip' | 'list';
export const ATTR_TYPES: readonly AttrType[] = ['string', 'number', 'bool', 'host', 'path', 'ip', 'list'];

export interface AttrSchema {
  name: string;
  type: AttrType;
  required: boolean;
  slot: number;
  read: (o: Record<string, unknown>) => unknown;
}
export interface ActionSchema {
  name: string;
  attrs: Map<string, AttrSchema>;
  /** The same, as a list (hot path: no iterator per request). */
  list: AttrSchema[];
  /** Global slot → index in `list`, or -1 when this action does not declare the attribute. */
  local: Int16Array;
}

export interface Schema {
  actions: Map<string, ActionSchema>;
  /** Attribute name → slot in a normalised request's resource array (one slot per name across actions). */
  slots: Map<string, number>;
}

/** `dynamic`: a principal/context attribute with no schema; compares only within one JSON type. */
export type RefType = AttrType | 'dynamic';
export type Ref =
  | { root: 'resource'; name: string; slot: number; type: AttrType }
  | { root: 'principal'; name: string; type: RefType }
  | { root: 'context'; name: string; type: RefType }
  | { root: 'action'; name: 'action'; type: 'string' };

/** A literal after resolution: host/path values are normalised strings; ip values are CIDRs. */
export type Scalar = string | number | boolean;

interface CondBase {
  text: string;
  loc: Loc;
}
export type CondIR =
  | { k: 'true' }
  | ({ k: 'and' | 'or'; args: CondIR[] } & CondBase)
  | ({ k: 'not'; arg: CondIR } & CondBase)
  | ({ k: 'eq'; ref: Ref; neg: boolean; value: Scalar; ip?: Ip } & CondBase)
  | ({ k: 'cmp'; ref: Ref; op: '<' | '<=' | '>' | '>='; value: number } & CondBase)
  | ({ k: 'in'; ref: Ref; values: Scalar[]; cidrs?: Cidr[] } & CondBase)
  | ({ k: 'contains'; ref: Ref; value: Scalar } & CondBase)
  | ({ k: 'matches'; ref: Ref; globs: string[] } & CondBase)
  | ({ k: 'exists'; ref: Ref } & CondBase)
  | ({ k: 'truthy'; ref: Ref } & CondBase);

export interface ScopeIR {
  kind: ScopeKind;
  value?: string;
}

export interface RuleIR {
  /** Position in the set (files sorted by name, then source order): the reason order. */
  ordinal: number;
  id: string;
  policy: string;
  effect: EffectName;
  because?: string;
  source: string;
  /** Declared action names this rule applies to (wildcards expanded against the schema). */
  actions: string[];
  scope: ScopeIR;
  role?: string;
  cond: CondIR;
  /** The reason this rule contributes to a decision (frozen: shared by every decision). */
  reason: Reason;
}

/** A lease ceiling: what leases signed by these issuers may grant at most, and for how long. */
export interface CeilingIR {
  /** Key ids or `iss` names (unique across the set). */
  issuers: string[];
  /** The longest lifetime (exp - iat) a lease of these issuers may have, in seconds. */
  maxSec: number;
  /** As written (`8h`), for messages. */
  maxText: string;
  /** `allow` rules: a lease rule counts only within their actions, and applies only where one of them applies. */
  rules: RuleIR[];
  /** "file:line:col" of the declaration. */
  source: string;
}

export interface Model {
  schema: Schema;
  rules: RuleIR[];
  /** Lease ceilings in set order; none means leases grant nothing. */
  ceilings: CeilingIR[];
  /** Role → the roles it holds: itself and every role it extends, transitively. */
  roleClosure: Map<string, string[]>;
}
