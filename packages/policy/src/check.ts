/**
 * The checker: AST → checked model, collecting every diagnostic (precise rules 1–17).
 * Resolves constants (list constants spliced into lists), builds the action schema, the role
 * graph, expands action wildcards, types every attribute reference from the actions of its
 * rule, normalises every literal and pattern for its type, and numbers the rules.
 */
import type { Reason } from '@portcullis/protocol';
import type { PcxCode } from '@portcullis/protocol/codes';
import type {
  ActionDecl,
  AttributesDecl,
  CondAst,
  ConstRef,
  FileAst,
  LeasesDecl,
  LetDecl,
  Loc,
  NameRef,
  Operand,
  PathAst,
  PolicyDecl,
  RoleDecl,
  RuleAst,
  ScopeAst,
  ValueAst,
} from './ast.js';
import { pathText } from './ast.js';
import type { Diagnostic, Severity } from './diagnostics.js';
import { didYouMean } from './diagnostics.js';
import { closestName, isTokenName, MAX_TOKEN_TTL_SEC } from '@portcullis/protocol';
import type { AttrType, CeilingIR, CondIR, Model, Ref, RefType, RuleIR, Scalar, Schema, ScopeIR } from './model.js';
import { ATTR_TYPES } from './model.js';
import { SchemaBuilder } from './schema.js';
import { type Cidr, parseCidr, parseIp } from '@portcullis/protocol/ip';
import { normalizeHost, normalizePath, parseHostGlob } from './values.js';

export interface ParsedFile {
  path: string;
  /** The name relative to the policy root (SourceFile.name): what a reason's `source` shows. */
  name?: string;
  text: string;
  ast: FileAst;
}

interface ResolvedScalar {
  value: Scalar;
  loc: Loc;
}
type Resolved = { kind: 'scalar'; item: ResolvedScalar } | { kind: 'list'; items: ResolvedScalar[] };

interface RoleInfo {
  name: string;
  extends: Set<string>;
  bodies: { decl: RoleDecl; scope: ScopeIR; policy?: string; file: string }[];
}

const LIST_TYPES = new Set<RefType>(['list', 'dynamic']);

/** Principal and context attributes every request may carry (the request normaliser types them). */
const BUILT_IN_ATTRIBUTES: ReadonlyMap<string, RefType> = new Map<string, RefType>([
  ['principal.id', 'string'],
  ['principal.roles', 'list'],
  ['context.project', 'string'],
  ['context.blueprint', 'string'],
  ['context.session', 'string'],
  ['context.leases', 'list'],
]);
/**
 * Types an `attributes` block may give: JSON's own, or `any` (compared only within one JSON type).
 * host, path and ip need normalisation, which only resource attributes (declared by actions) get.
 */
const DECLARABLE_TYPES: readonly string[] = ['string', 'number', 'bool', 'list', 'any'];
/** The grammar's keywords that may not name a constant (a reference to one could never parse). */
export const RESERVED_WORDS: readonly string[] = [
  'allow',
  'deny',
  'ask',
  'when',
  'because',
  'and',
  'or',
  'not',
  'in',
  'matches',
  'exists',
  'true',
  'false',
  'principal',
  'resource',
  'context',
  'action',
];

export class Checker {
  readonly diagnostics: Diagnostic[] = [];
  readonly schema: Schema;
  private readonly lets = new Map<string, LetDecl>();
  private readonly resolved = new Map<string, Resolved | null>();
  private readonly resolving = new Set<string>();
  readonly roles = new Map<string, RoleInfo>();
  readonly roleClosure = new Map<string, string[]>();
  private readonly sources = new Map<string, string>();
  /** `principal.NAME` / `context.NAME` → the type and place of its declaration (`attributes` blocks). */
  private readonly declared = new Map<string, { type: RefType; loc: Loc }>();
  private readonly names = new Map<string, string>();

  constructor(files: readonly ParsedFile[]) {
    const builder = new SchemaBuilder();
    this.schema = builder.schema;
    for (const f of files) {
      this.sources.set(f.path, f.text);
      if (f.name !== undefined) this.names.set(f.path, f.name);
    }
    const decls = files.flatMap((f) => f.ast.decls);
    // Pass 1: declarations that others refer to (actions, constants, roles), in any order.
    for (const d of decls) {
      if (d.kind === 'action') this.declareAction(builder, d);
      else if (d.kind === 'attributes') this.declareAttributes(d);
      else if (d.kind === 'let') {
        if (RESERVED_WORDS.includes(d.name))
          this.error(
            'PCX_CHECK_RESERVED_NAME',
            `"${d.name}" is a reserved word and cannot name a constant; choose another name (e.g. "${d.name}_value")`,
            d.loc,
          );
        else if (this.lets.has(d.name))
          this.error(
            'PCX_CHECK_DUPLICATE_LET',
            `constant "${d.name}" is already defined at ${locText(this.lets.get(d.name)!.loc)}; rename one of them`,
            d.loc,
          );
        else this.lets.set(d.name, d);
      }
    }
    for (const d of decls) {
      if (d.kind === 'role') this.addRoleBody(d, { kind: 'global' });
      else if (d.kind === 'policy')
        for (const it of d.items) if (it.kind === 'role') this.addRoleBody(it, scopeIR(d.scope), d.name);
    }
    for (const name of this.lets.keys()) this.resolveConst(name, this.lets.get(name)!.loc);
    this.checkRoles();
  }

  error(
    code: PcxCode,
    message: string,
    loc: Loc | { file: string; line: number; col: number; endLine?: number; endCol?: number },
    severity: Severity = 'error',
  ): void {
    if (severity === 'error') this.errors++;
    this.diagnostics.push({
      code,
      severity,
      message,
      file: loc.file,
      line: loc.line,
      col: loc.col,
      endLine: loc.endLine,
      endCol: loc.endCol,
    });
  }

  // ---- actions --------------------------------------------------------------------------------
  private declareAction(builder: SchemaBuilder, d: ActionDecl): void {
    if (this.schema.actions.has(d.name)) {
      this.error(
        'PCX_CHECK_DUPLICATE_ACTION',
        `action "${d.name}" is already ` +
          `declared${d.name.includes('.') && !this.customActions.has(d.name) ? ' (it is built in)' : ''}`,
        d.loc,
      );
      return;
    }
    if (!/^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$/.test(d.name)) {
      this.error('PCX_CHECK_ACTION_NAME', `"${d.name}" is not a valid action name`, d.loc);
      return;
    }
    const attrs: { name: string; type: AttrType; required: boolean }[] = [];
    const seen = new Set<string>();
    for (const a of d.attrs) {
      if (seen.has(a.name)) {
        this.error(
          'PCX_CHECK_DUPLICATE_ATTRIBUTE',
          `attribute "${a.name}" is declared twice in action ${d.name}`,
          a.loc,
        );
        continue;
      }
      seen.add(a.name);
      if (!(ATTR_TYPES as readonly string[]).includes(a.type)) {
        this.error(
          'PCX_CHECK_UNKNOWN_TYPE',
          `unknown type "${a.type}"${didYouMean(a.type, ATTR_TYPES)}; types are ${ATTR_TYPES.join(', ')}`,
          a.typeLoc,
        );
        continue;
      }
      attrs.push({ name: a.name, type: a.type as AttrType, required: !a.optional });
    }
    this.customActions.add(d.name);
    // Declared even when an attribute was bad, so that uses of the action do not cascade errors.
    builder.add(d.name, attrs);
  }
  private readonly customActions = new Set<string>();

  // ---- declared principal and context attributes ---------------------------------------------
  private declareAttributes(d: AttributesDecl): void {
    for (const a of d.attrs) {
      const key = `${a.root}.${a.name}`;
      if (BUILT_IN_ATTRIBUTES.has(key)) {
        this.error('PCX_CHECK_DUPLICATE_ATTRIBUTE', `${key} is built in (a ${BUILT_IN_ATTRIBUTES.get(key)})`, a.loc);
        continue;
      }
      const prev = this.declared.get(key);
      if (prev) {
        this.error('PCX_CHECK_DUPLICATE_ATTRIBUTE', `${key} is already declared at ${locText(prev.loc)}`, a.loc);
        continue;
      }
      if (!DECLARABLE_TYPES.includes(a.type)) {
        const resourceOnly = a.type === 'host' || a.type === 'path' || a.type === 'ip';
        this.error(
          'PCX_CHECK_UNKNOWN_TYPE',
          resourceOnly
            ? `${key} cannot be a ${a.type}: ${a.type} values are normalised only for resource attributes; ` +
                `declare it as a string`
            : `unknown type "${a.type}"${didYouMean(a.type, DECLARABLE_TYPES)}; ` +
                `a ${a.root} attribute is one of ${DECLARABLE_TYPES.join(', ')}`,
          a.typeLoc,
        );
        continue;
      }
      this.declared.set(key, { type: a.type === 'any' ? 'dynamic' : (a.type as AttrType), loc: a.loc });
    }
  }

  /** A principal/context attribute: built in, declared, or an error with the closest known name. */
  private contextRef(p: PathAst): Ref | null {
    const root = p.root as 'principal' | 'context';
    const key = `${root}.${p.name}`;
    const type = BUILT_IN_ATTRIBUTES.get(key) ?? this.declared.get(key)?.type;
    if (type !== undefined) return { root, name: p.name!, type };
    // Suggest by the name after the root: "dept" is no typo of "id" however short both are.
    const known = [...BUILT_IN_ATTRIBUTES.keys(), ...this.declared.keys()]
      .filter((k) => k.startsWith(`${root}.`))
      .map((k) => k.slice(root.length + 1));
    const near = closestName(p.name!, known);
    this.error(
      'PCX_CHECK_UNKNOWN_ATTRIBUTE',
      `unknown attribute ${key}` +
        (near !== undefined
          ? ` (did you mean "${root}.${near}"?)`
          : `: ${root} attributes other than the built-in ones must be declared, ` +
            `e.g. \`attributes { ${key}: string }\``),
      p.loc,
    );
    return null;
  }
  /** Declared action names, computed once all declarations are in. */
  private allActions: string[] | undefined;

  // ---- constants --------------------------------------------------------------------------------
  private resolveConst(name: string, at: Loc): Resolved | null {
    if (this.resolved.has(name)) return this.resolved.get(name)!;
    const d = this.lets.get(name);
    if (!d) {
      this.error('PCX_CHECK_UNKNOWN_CONSTANT', `unknown constant "${name}"${didYouMean(name, this.lets.keys())}`, at);
      return null;
    }
    if (this.resolving.has(name)) {
      this.error('PCX_CHECK_CONSTANT_CYCLE', `constant "${name}" refers to itself`, d.loc);
      this.resolved.set(name, null);
      return null;
    }
    this.resolving.add(name);
    const r = this.resolveValue(d.value);
    this.resolving.delete(name);
    this.resolved.set(name, r);
    return r;
  }

  resolveValue(v: ValueAst): Resolved | null {
    switch (v.kind) {
      case 'str':
      case 'num':
      case 'bool':
        return { kind: 'scalar', item: { value: v.value, loc: v.loc } };
      case 'const':
        return this.resolveConstRef(v);
      case 'list': {
        const items: ResolvedScalar[] = [];
        let ok = true;
        for (const it of v.items) {
          const r = this.resolveValue(it);
          if (!r) ok = false;
          else if (r.kind === 'list')
            items.push(...r.items); // a list constant inside a list is spliced in
          else items.push(r.item);
        }
        return ok ? { kind: 'list', items } : null;
      }
    }
  }

  private resolveConstRef(c: ConstRef): Resolved | null {
    const r = this.resolveConst(c.name, c.loc);
    if (!r) return null;
    // Report positions at the use site: a list's elements keep their own locations.
    return r.kind === 'scalar' ? { kind: 'scalar', item: { value: r.item.value, loc: c.loc } } : r;
  }

  // ---- roles ----------------------------------------------------------------------------------
  private addRoleBody(d: RoleDecl, scope: ScopeIR, policy?: string): void {
    let info = this.roles.get(d.name);
    if (!info) {
      info = { name: d.name, extends: new Set(), bodies: [] };
      this.roles.set(d.name, info);
    }
    info.bodies.push({ decl: d, scope, policy, file: d.loc.file });
  }

  private checkRoles(): void {
    for (const info of this.roles.values()) {
      for (const b of info.bodies) {
        for (const e of b.decl.extends) {
          if (!this.roles.has(e.name))
            this.error(
              'PCX_CHECK_UNKNOWN_ROLE',
              `role ${info.name} extends unknown role "${e.name}"${didYouMean(e.name, this.roles.keys())}`,
              e.loc,
            );
          else info.extends.add(e.name);
        }
      }
    }
    // Cycles: depth-first search; each cycle is reported once, at the role that closes it.
    const state = new Map<string, 1 | 2>();
    const stack: string[] = [];
    const visit = (r: string): void => {
      state.set(r, 1);
      stack.push(r);
      for (const e of this.roles.get(r)!.extends) {
        if (state.get(e) === 1) {
          const cycle = [...stack.slice(stack.indexOf(e)), e];
          const ref = this.roles
            .get(r)!
            .bodies.flatMap((b) => b.decl.extends)
            .find((x) => x.name === e)!;
          this.error(
            'PCX_CHECK_ROLE_CYCLE',
            `role cycle: ${cycle.join(' → ')}; a role cannot extend itself, directly or transitively`,
            ref.loc,
          );
        } else if (!state.has(e)) visit(e);
      }
      stack.pop();
      state.set(r, 2);
    };
    for (const r of [...this.roles.keys()].sort()) if (!state.has(r)) visit(r);
    for (const r of this.roles.keys()) {
      const seen = new Set<string>([r]);
      const todo = [r];
      while (todo.length)
        for (const e of this.roles.get(todo.pop()!)!.extends) {
          if (seen.has(e)) continue;
          seen.add(e);
          todo.push(e);
        }
      this.roleClosure.set(r, [...seen].sort());
    }
  }

  // ---- rules ----------------------------------------------------------------------------------
  /** Expands a rule's action list against the schema (duplicates removed, declaration order). */
  expandActions(actions: NameRef[]): string[] | null {
    const out = new Set<string>();
    let ok = true;
    const all = (this.allActions ??= [...this.schema.actions.keys()]);
    for (const a of actions) {
      if (a.name === '*') for (const x of all) out.add(x);
      else if (a.name.endsWith('.*')) {
        const prefix = a.name.slice(0, -1);
        const hit = all.filter((x) => x.startsWith(prefix));
        if (hit.length === 0) {
          const prefixes = new Set(all.map((x) => x.slice(0, x.indexOf('.') + 1) + '*'));
          this.error(
            'PCX_CHECK_UNKNOWN_ACTION',
            `no declared action matches "${a.name}"${didYouMean(a.name, prefixes)}`,
            a.loc,
          );
          ok = false;
        }
        for (const x of hit) out.add(x);
      } else if (this.schema.actions.has(a.name)) out.add(a.name);
      else {
        this.error(
          'PCX_CHECK_UNKNOWN_ACTION',
          `unknown action "${a.name}"${didYouMean(a.name, all)}; declare it with \`action ${a.name} { … }\``,
          a.loc,
        );
        ok = false;
      }
    }
    return ok ? [...out] : null;
  }

  checkRule(
    r: RuleAst,
    info: { id: string; policy: string; ordinal: number; scope: ScopeIR; role?: string },
  ): RuleIR | null {
    const actions = this.expandActions(r.actions);
    if (!actions) {
      if (r.when) this.checkCondNoSchema(r.when);
      return null;
    }
    const before = this.errorCount();
    const cond = r.when ? this.cond(r.when, actions) : ({ k: 'true' } as const);
    if (this.errorCount() > before || !cond) return null;
    if (r.effect === 'deny' && r.when) this.warnOptional(r, cond, actions);
    // Named relative to the policy root, like policy_version: a decision must not depend on the
    // directory the set was loaded from (diagnostics keep the path, for the author's editor).
    const source = `${this.names.get(r.loc.file) ?? r.loc.file}:${r.loc.line}:${r.loc.col}`;
    const reason: Reason = Object.freeze(
      r.because === undefined
        ? { effect: r.effect, policy: info.policy, rule: info.id, source }
        : { effect: r.effect, policy: info.policy, rule: info.id, because: r.because, source },
    );
    return {
      ordinal: info.ordinal,
      id: info.id,
      policy: info.policy,
      effect: r.effect,
      because: r.because,
      source,
      actions,
      scope: info.scope,
      role: info.role,
      cond,
      reason,
    };
  }

  /** Errors reported so far (a counter: rules check in O(1) whether they added one). */
  private errors = 0;
  private errorCount(): number {
    return this.errors;
  }

  // With unknown actions the attributes cannot be typed; still report unknown constants.
  private checkCondNoSchema(c: CondAst): void {
    const visitOperand = (o: Operand) => {
      if (o.kind === 'const' || o.kind === 'list') this.resolveValue(o);
    };
    const walk = (x: CondAst): void => {
      if (x.op === 'and' || x.op === 'or') x.args.forEach(walk);
      else if (x.op === 'not' || x.op === 'paren') walk(x.arg);
      else if (x.op === 'cmp' || x.op === 'in' || x.op === 'matches') {
        visitOperand(x.left);
        visitOperand(x.right);
      }
    };
    walk(c);
  }

  private text(loc: Loc): string {
    return (this.sources.get(loc.file) ?? '').slice(loc.offset, loc.endOffset);
  }

  private ref(p: PathAst, actions: string[]): Ref | null {
    if (p.root === 'action') return { root: 'action', name: 'action', type: 'string' };
    const name = p.name!;
    if (p.root === 'principal' || p.root === 'context') return this.contextRef(p);
    const types = new Set<AttrType>();
    for (const a of actions) {
      const at = this.schema.actions.get(a)!.attrs.get(name);
      if (at) types.add(at.type);
    }
    if (types.size === 0) {
      const names = new Set(actions.flatMap((a) => [...this.schema.actions.get(a)!.attrs.keys()]));
      const which =
        actions.length === 1
          ? `action ${actions[0]}`
          : `actions ${actions.length > 4 ? actions.slice(0, 4).join(', ') + ', …' : actions.join(', ')}`;
      this.error(
        'PCX_CHECK_UNKNOWN_ATTRIBUTE',
        `unknown attribute resource.${name} for ${which}${didYouMean(name, names)}`,
        p.loc,
      );
      return null;
    }
    if (types.size > 1) {
      this.error(
        'PCX_CHECK_ATTRIBUTE_TYPE_CONFLICT',
        `resource.${name} has different types (${[...types].join(', ')}) across this rule's actions; split the rule`,
        p.loc,
      );
      return null;
    }
    return { root: 'resource', name, slot: this.schema.slots.get(name)!, type: [...types][0]! };
  }

  private cond(c: CondAst, actions: string[]): CondIR | null {
    const base = { text: this.text(c.loc), loc: c.loc };
    switch (c.op) {
      case 'paren':
        return this.cond(c.arg, actions);
      case 'and':
      case 'or': {
        const args = c.args.map((a) => this.cond(a, actions));
        return args.every((a) => a) ? { k: c.op, args: args as CondIR[], ...base } : null;
      }
      case 'not': {
        const arg = this.cond(c.arg, actions);
        return arg ? { k: 'not', arg, ...base } : null;
      }
      case 'exists': {
        const ref = this.ref(c.path, actions);
        return ref ? { k: 'exists', ref, ...base } : null;
      }
      case 'bool': {
        const ref = this.ref(c.path, actions);
        if (!ref) return null;
        if (ref.type !== 'bool' && ref.type !== 'dynamic') {
          this.error(
            'PCX_CHECK_OPERATOR_TYPE',
            `${pathText(c.path)} is a ${ref.type}, not a bool: compare it (==, in, matches) or test ` +
              `\`${pathText(c.path)} exists\``,
            c.loc,
          );
          return null;
        }
        return { k: 'truthy', ref, ...base };
      }
      case 'cmp':
        return this.comparison(c, actions, base);
      case 'in':
        return this.membership(c, actions, base);
      case 'matches':
        return this.matches(c, actions, base);
    }
  }

  private comparison(
    c: Extract<CondAst, { op: 'cmp' }>,
    actions: string[],
    base: { text: string; loc: Loc },
  ): CondIR | null {
    let { left, right } = c;
    let op = c.cmp;
    if (left.kind !== 'path' && right.kind === 'path') {
      [left, right] = [right, left];
      op = ({ '<': '>', '>': '<', '<=': '>=', '>=': '<=' } as const)[op as '<'] ?? op;
    }
    if (left.kind !== 'path' || right.kind === 'path') {
      this.error(
        'PCX_CHECK_OPERAND',
        `\`${op}\` compares an attribute with a literal or constant (one side must be principal.*, resource.*, ` +
          `context.* or action, the other a value)`,
        c.loc,
      );
      return null;
    }
    const ref = this.ref(left, actions);
    const v = this.resolveValue(right);
    if (!ref || !v) return null;
    if (v.kind === 'list') {
      this.error(
        'PCX_CHECK_OPERAND',
        `\`${op}\` needs a single value, not a list; use \`${pathText(left)} in [...]\` for membership`,
        right.loc,
      );
      return null;
    }
    const item = v.item;
    if (op === '==' || op === '!=') {
      if (ref.type === 'list') {
        this.error(
          'PCX_CHECK_OPERATOR_TYPE',
          `${pathText(left)} is a list: use \`VALUE in ${pathText(left)}\` instead of \`${op}\``,
          c.loc,
        );
        return null;
      }
      if (ref.type === 'ip') {
        const ip = typeof item.value === 'string' ? parseIp(item.value) : undefined;
        if (!ip) {
          const cidrHint =
            typeof item.value === 'string' && item.value.includes('/')
              ? ` (for a CIDR use \`${pathText(left)} in ["${item.value}"]\`)`
              : '';
          this.error(
            typeof item.value === 'string' ? 'PCX_CHECK_INVALID_IP' : 'PCX_CHECK_TYPE_MISMATCH',
            `${pathText(left)} is an ip: expected an IP address string${cidrHint}, got ${show(item.value)}`,
            item.loc,
          );
          return null;
        }
        return { k: 'eq', ref, neg: op === '!=', value: item.value as string, ip, ...base };
      }
      const value = this.typedScalar(ref, item, pathText(left));
      if (value === undefined) return null;
      return { k: 'eq', ref, neg: op === '!=', value, ...base };
    }
    if (ref.type !== 'number' && ref.type !== 'dynamic') {
      this.error('PCX_CHECK_OPERATOR_TYPE', `\`${op}\` needs a number, but ${pathText(left)} is a ${ref.type}`, c.loc);
      return null;
    }
    if (typeof item.value !== 'number') {
      this.error('PCX_CHECK_TYPE_MISMATCH', `\`${op}\` compares with a number, got ${show(item.value)}`, item.loc);
      return null;
    }
    return { k: 'cmp', ref, op: op as '<', value: item.value, ...base };
  }

  /** Checks and normalises one literal for a typed reference (dynamic: any JSON scalar). */
  private typedScalar(ref: Ref, item: ResolvedScalar, what: string): Scalar | undefined {
    const t = ref.type;
    const want =
      t === 'host' || t === 'path' ? 'string' : t === 'dynamic' ? typeof item.value : t === 'bool' ? 'boolean' : t;
    if (typeof item.value !== want) {
      this.error(
        'PCX_CHECK_TYPE_MISMATCH',
        `${what} is a ${t}: expected a ${t === 'host' || t === 'path' ? `${t} string` : t} literal, ` +
          `got ${show(item.value)}`,
        item.loc,
      );
      return undefined;
    }
    if (t === 'host') {
      const h = normalizeHost(item.value as string);
      if (h === undefined) {
        this.error(
          'PCX_CHECK_INVALID_HOST',
          `"${item.value}" is not a valid host ` +
            '(labels of letters, digits, - and _, or an IP literal; no port, no brackets; ' +
            'a name ending in a number must be a dotted-quad IPv4 address)',
          item.loc,
        );
        return undefined;
      }
      return h;
    }
    if (t === 'path') return this.checkPath(item.value as string, item.loc, false);
    return item.value;
  }

  private checkPath(p: string, loc: Loc, glob: boolean): string | undefined {
    const n = normalizePath(p);
    if (n === undefined) {
      this.error(
        'PCX_CHECK_INVALID_PATH',
        `path ${glob ? 'pattern ' : ''}"${p}" must be absolute (start with /) and must not climb above /`,
        loc,
      );
      return undefined;
    }
    if (n !== p) {
      this.error(
        'PCX_CHECK_PATH_NOT_NORMALISED',
        `path ${glob ? 'pattern ' : ''}"${p}" is not normalised; write "${n}"`,
        loc,
      );
      return undefined;
    }
    if (glob) {
      for (const seg of p.split('/')) {
        if (seg.includes('**') && seg !== '**') {
          this.error(
            'PCX_CHECK_PATH_GLOB',
            `path pattern "${p}": \`**\` must be a whole segment (write "/a/**", not "/a/**b")`,
            loc,
          );
          return undefined;
        }
      }
    }
    return n;
  }

  private membership(
    c: Extract<CondAst, { op: 'in' }>,
    actions: string[],
    base: { text: string; loc: Loc },
  ): CondIR | null {
    if (c.left.kind === 'path' && c.right.kind !== 'path') {
      const ref = this.ref(c.left, actions);
      const v = this.resolveValue(c.right);
      if (!ref || !v) return null;
      const what = pathText(c.left);
      if (v.kind !== 'list') {
        this.error(
          'PCX_CHECK_OPERAND',
          `\`in\` needs a list on its right (a list literal or a list constant), got ${show(v.item.value)}; ` +
            'use `==` for a single value',
          c.right.loc,
        );
        return null;
      }
      if (ref.type === 'list') {
        this.error(
          'PCX_CHECK_OPERATOR_TYPE',
          `${what} is a list: write \`VALUE in ${what}\` to test membership`,
          c.loc,
        );
        return null;
      }
      if (ref.type === 'ip') {
        const cidrs: Cidr[] = [];
        for (const it of v.items) {
          if (typeof it.value !== 'string') {
            this.error(
              'PCX_CHECK_TYPE_MISMATCH',
              `${what} is an ip: list elements must be CIDR or address strings, got ${show(it.value)}`,
              it.loc,
            );
            continue;
          }
          const r = parseCidr(it.value);
          if (!r.ok)
            this.error(
              r.problem === 'host-bits' ? 'PCX_CHECK_CIDR_HOST_BITS' : 'PCX_CHECK_INVALID_IP',
              r.message,
              it.loc,
            );
          else cidrs.push(r.cidr);
        }
        if (cidrs.length !== v.items.length) return null;
        return { k: 'in', ref, values: v.items.map((i) => i.value), cidrs, ...base };
      }
      const values: Scalar[] = [];
      for (const it of v.items) {
        const x = this.typedScalar(ref, it, what);
        if (x === undefined) return null;
        values.push(x);
      }
      return { k: 'in', ref, values, ...base };
    }
    if (c.left.kind !== 'path' && c.right.kind === 'path') {
      const ref = this.ref(c.right, actions);
      const v = this.resolveValue(c.left);
      if (!ref || !v) return null;
      if (!LIST_TYPES.has(ref.type)) {
        this.error(
          'PCX_CHECK_OPERATOR_TYPE',
          `\`VALUE in ${pathText(c.right)}\` needs a list attribute, but ${pathText(c.right)} is a ${ref.type}` +
            (v.kind === 'scalar' ? `; did you mean \`${pathText(c.right)} == …\`?` : ''),
          c.loc,
        );
        return null;
      }
      if (v.kind !== 'scalar') {
        this.error(
          'PCX_CHECK_OPERAND',
          `the value before \`in ${pathText(c.right)}\` must be a single value, not a list`,
          c.left.loc,
        );
        return null;
      }
      if (c.right.root === 'principal' && c.right.name === 'roles' && typeof v.item.value !== 'string') {
        this.error(
          'PCX_CHECK_TYPE_MISMATCH',
          `principal.roles holds role names (strings), got ${show(v.item.value)}`,
          v.item.loc,
        );
        return null;
      }
      return { k: 'contains', ref, value: v.item.value, ...base };
    }
    this.error('PCX_CHECK_OPERAND', '`in` is `ATTRIBUTE in LIST` or `VALUE in LIST-ATTRIBUTE`', c.loc);
    return null;
  }

  private matches(
    c: Extract<CondAst, { op: 'matches' }>,
    actions: string[],
    base: { text: string; loc: Loc },
  ): CondIR | null {
    if (c.left.kind !== 'path' || c.right.kind === 'path') {
      this.error(
        'PCX_CHECK_OPERAND',
        '`matches` is `ATTRIBUTE matches "GLOB"` or `ATTRIBUTE matches [GLOB, ...]`',
        c.loc,
      );
      return null;
    }
    const ref = this.ref(c.left, actions);
    const v = this.resolveValue(c.right);
    if (!ref || !v) return null;
    const what = pathText(c.left);
    if (ref.type !== 'string' && ref.type !== 'host' && ref.type !== 'path' && ref.type !== 'dynamic') {
      this.error(
        'PCX_CHECK_OPERATOR_TYPE',
        `\`matches\` applies to string, host and path attributes, but ${what} is a ${ref.type}` +
          (ref.type === 'ip' ? ` (use \`${what} in ["10.0.0.0/8"]\` for CIDRs)` : ''),
        c.loc,
      );
      return null;
    }
    const items = v.kind === 'list' ? v.items : [v.item];
    const globs: string[] = [];
    for (const it of items) {
      if (typeof it.value !== 'string') {
        this.error('PCX_CHECK_TYPE_MISMATCH', `a glob is a string, got ${show(it.value)}`, it.loc);
        return null;
      }
      if (ref.type === 'host') {
        const g = parseHostGlob(it.value);
        if ('error' in g) {
          this.error('PCX_CHECK_HOST_GLOB', g.error, it.loc);
          return null;
        }
        globs.push(g.labels.join('.'));
      } else if (ref.type === 'path') {
        const p = this.checkPath(it.value, it.loc, true);
        if (p === undefined) return null;
        globs.push(p);
      } else globs.push(it.value);
    }
    return { k: 'matches', ref, globs, ...base };
  }

  // Precise rule 9: a deny that depends on an optional attribute without `exists` fails open
  // when the attribute is absent (the comparison is false, so the deny does not fire).
  private warnOptional(r: RuleAst, cond: CondIR, actions: string[]): void {
    const used = new Map<string, Ref>();
    const tested = new Set<string>();
    const walk = (c: CondIR): void => {
      if (c.k === 'true') return;
      if ('args' in c) {
        for (const a of c.args) walk(a);
        return;
      }
      if ('arg' in c) {
        walk(c.arg);
        return;
      }
      const key = `${c.ref.root}.${c.ref.name}`;
      if (c.k === 'exists') tested.add(key);
      else used.set(key, c.ref);
    };
    walk(cond);
    for (const [key, ref] of used) {
      if (tested.has(key)) continue;
      // Declared principal/context attributes may be absent from any request; built-in ones are typed.
      let optional = ref.root !== 'action' && !BUILT_IN_ATTRIBUTES.has(key);
      if (ref.root === 'resource') {
        optional = actions.some((a) => this.schema.actions.get(a)!.attrs.get(ref.name)?.required === false);
      }
      if (optional) {
        this.error(
          'PCX_CHECK_DENY_OPTIONAL',
          `this deny depends on ${key}, which may be absent: when it is, the comparison is false and the deny ` +
            `does not apply; add \`${key} exists\` (e.g. \`not ${key} exists or …\`) to make the intent explicit`,
          r.loc,
          'warning',
        );
      }
    }
  }
}

export function scopeIR(s: ScopeAst): ScopeIR {
  return s.kind === 'global' ? { kind: 'global' } : { kind: s.kind, value: s.value };
}

function locText(l: Loc): string {
  return `${l.file}:${l.line}:${l.col}`;
}

function show(v: Scalar): string {
  return typeof v === 'string' ? `a string ("${v}")` : typeof v === 'number' ? `a number (${v})` : `a bool (${v})`;
}

/** Checks a whole set: declarations, then every rule (numbered), into the model. */
export function checkSet(files: readonly ParsedFile[]): { model?: Model; checker: Checker } {
  const ck = new Checker(files);
  const rules: RuleIR[] = [];
  const policies = new Map<string, PolicyDecl>();
  const roleCounters = new Map<string, number>();
  let ordinal = 0;
  for (const f of files) {
    for (const d of f.ast.decls) {
      if (d.kind === 'policy') {
        const prev = policies.get(d.name);
        if (prev)
          ck.error(
            'PCX_CHECK_DUPLICATE_POLICY',
            `policy "${d.name}" is already defined at ${locText(prev.nameLoc)}; policy names are unique across the set`,
            d.nameLoc,
          );
        else policies.set(d.name, d);
        const scope = scopeIR(d.scope);
        let n = 0;
        for (const it of d.items) {
          const rs = it.kind === 'rule' ? [it] : it.rules;
          for (const r of rs) {
            n++;
            const ir = ck.checkRule(r, {
              id: `${d.name}#${n}`,
              policy: d.name,
              ordinal: ordinal++,
              scope,
              role: it.kind === 'role' ? it.name : undefined,
            });
            if (ir) rules.push(ir);
          }
        }
      } else if (d.kind === 'role') {
        for (const r of d.rules) {
          const n = (roleCounters.get(d.name) ?? 0) + 1;
          roleCounters.set(d.name, n);
          const ir = ck.checkRule(r, {
            id: `role:${d.name}#${n}`,
            policy: `role:${d.name}`,
            ordinal: ordinal++,
            scope: { kind: 'global' },
            role: d.name,
          });
          if (ir) rules.push(ir);
        }
      }
    }
  }
  const ceilings = checkCeilings(
    ck,
    files.flatMap((f) => f.ast.decls.filter((d): d is LeasesDecl => d.kind === 'leases')),
  );
  const failed = ck.diagnostics.some((d) => d.severity === 'error');
  return {
    model: failed ? undefined : { schema: ck.schema, rules, roleClosure: ck.roleClosure, ceilings },
    checker: ck,
  };
}

/**
 * Lease ceilings: each issuer named once across the set, a lifetime between 1 s and the
 * longest a token may be minted with, `allow` rules only (a ceiling bounds what leases may
 * allow; denies belong in policies, where they beat leases anyway).
 */
function checkCeilings(ck: Checker, decls: LeasesDecl[]): CeilingIR[] {
  const out: CeilingIR[] = [];
  const owner = new Map<string, LeasesDecl>();
  for (const d of decls) {
    const issuers: string[] = [];
    for (const i of d.issuers) {
      const prev = owner.get(i.value);
      if (!isTokenName(i.value))
        ck.error(
          'PCX_CHECK_CEILING_ISSUER',
          `issuer ${JSON.stringify(i.value)} is not a key id or issuer name ` +
            '(1-256 visible ASCII characters, no spaces)',
          i.loc,
        );
      else if (prev)
        ck.error(
          'PCX_CHECK_DUPLICATE_CEILING',
          `issuer "${i.value}" already has a lease ceiling at ${locText(prev.loc)}; ` +
            'an issuer has one ceiling (merge the rules into it)',
          i.loc,
        );
      else {
        owner.set(i.value, d);
        issuers.push(i.value);
      }
    }
    if (d.max.seconds < 1 || d.max.seconds > MAX_TOKEN_TTL_SEC)
      ck.error(
        'PCX_CHECK_CEILING_LIFETIME',
        `lease lifetime ${d.max.raw} is out of range: write between 1s and ${MAX_TOKEN_TTL_SEC / 86400}d`,
        d.max.loc,
      );
    const name = `leases:${d.issuers[0]!.value}`;
    const rules: RuleIR[] = [];
    d.rules.forEach((r, i) => {
      if (r.effect !== 'allow') {
        ck.error(
          'PCX_CHECK_CEILING_EFFECT',
          `a lease ceiling holds \`allow\` rules (what leases may grant at most), not \`${r.effect}\`; ` +
            `put ${r.effect} rules in a policy`,
          r.loc,
        );
        return;
      }
      const ir = ck.checkRule(r, { id: `${name}#${i + 1}`, policy: name, ordinal: i, scope: { kind: 'global' } });
      if (ir) rules.push(ir);
    });
    out.push({ issuers, maxSec: d.max.seconds, maxText: d.max.raw, rules, source: locText(d.loc) });
  }
  return out;
}
