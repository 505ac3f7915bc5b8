/** The AST the grammar (dsl/policy.peggy) builds. Every node carries its location. */

export interface Loc {
  file: string;
  line: number;
  col: number;
  endLine: number;
  endCol: number;
  offset: number;
  endOffset: number;
}

export interface Comment {
  text: string;
  loc: Loc;
}

export interface FileAst {
  decls: Decl[];
  comments: Comment[];
}
export interface GrantAst {
  rules: RuleAst[];
  comments: Comment[];
}

export type Decl = LetDecl | ActionDecl | PolicyDecl | RoleDecl | LeasesDecl;

export interface LetDecl {
  kind: 'let';
  name: string;
  value: ValueAst;
  loc: Loc;
}

export interface AttrDeclAst {
  name: string;
  optional: boolean;
  type: string;
  typeLoc: Loc;
  loc: Loc;
}
export interface ActionDecl {
  kind: 'action';
  name: string;
  attrs: AttrDeclAst[];
  loc: Loc;
}

export type ScopeKind = 'global' | 'project' | 'blueprint' | 'session';
export interface ScopeAst {
  kind: ScopeKind;
  value?: string;
  valueLoc?: Loc;
  loc: Loc | null;
}
export interface PolicyDecl {
  kind: 'policy';
  name: string;
  nameLoc: Loc;
  scope: ScopeAst;
  items: (RuleAst | RoleDecl)[];
  loc: Loc;
}

export interface NameRef {
  name: string;
  loc: Loc;
}
export interface RoleDecl {
  kind: 'role';
  name: string;
  extends: NameRef[];
  rules: RuleAst[];
  loc: Loc;
}

/** A lifetime as written (`8h`) and in seconds. */
export interface DurationAst {
  raw: string;
  seconds: number;
  loc: Loc;
}
/** `leases from "issuer", … max 8h { allow … }`: the lease ceiling of those issuers. */
export interface LeasesDecl {
  kind: 'leases';
  issuers: StrLit[];
  max: DurationAst;
  rules: RuleAst[];
  loc: Loc;
}

export type EffectName = 'allow' | 'deny' | 'ask';
export interface RuleAst {
  kind: 'rule';
  effect: EffectName;
  actions: NameRef[];
  when?: CondAst;
  because?: string;
  loc: Loc;
}

export type PathRoot = 'principal' | 'resource' | 'context' | 'action';
export interface PathAst {
  kind: 'path';
  root: PathRoot;
  name: string | undefined;
  loc: Loc;
}

export interface StrLit {
  kind: 'str';
  value: string;
  loc: Loc;
}
export interface NumLit {
  kind: 'num';
  value: number;
  raw: string;
  loc: Loc;
}
export interface BoolLit {
  kind: 'bool';
  value: boolean;
  loc: Loc;
}
export interface ConstRef {
  kind: 'const';
  name: string;
  loc: Loc;
}
export interface ListLit {
  kind: 'list';
  items: (StrLit | NumLit | BoolLit | ConstRef)[];
  loc: Loc;
}
export type ValueAst = StrLit | NumLit | BoolLit | ConstRef | ListLit;
export type Operand = PathAst | ValueAst;

export type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=';
export type CondAst =
  | { op: 'or' | 'and'; args: CondAst[]; loc: Loc }
  | { op: 'not'; arg: CondAst; loc: Loc }
  | { op: 'paren'; arg: CondAst; loc: Loc }
  | { op: 'cmp'; cmp: CmpOp; left: Operand; right: Operand; loc: Loc }
  | { op: 'in'; left: Operand; right: Operand; loc: Loc }
  | { op: 'matches'; left: Operand; right: Operand; loc: Loc }
  | { op: 'exists'; path: PathAst; loc: Loc }
  | { op: 'bool'; path: PathAst; loc: Loc };

export function pathText(p: PathAst): string {
  return p.root === 'action' ? 'action' : `${p.root}.${p.name}`;
}
