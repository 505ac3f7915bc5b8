/**
 * Every error code Portcullis creates, each with a one-line meaning for the user: the one table
 * (docs/errors.md is generated from it by scripts/gen-errors-doc.ts). A code is `PCX_<AREA>_<WHAT>`,
 * is created only as a whole literal (never assembled at run time, so a grep finds every use) and
 * never changes meaning once shipped. `PcxError` takes a `PcxCode`: a misspelt or unlisted code
 * does not compile. New codes go here; protocol/test/codes.test.ts fails on a code used in a
 * source file but missing here, and on an entry no source file uses.
 *
 * Pure: no I/O, no node:net; the policy package imports it through `@portcullis/protocol/codes`.
 */
export const ERROR_CODES = {
  // Command line (every command)
  PCX_USAGE: 'the command line is wrong: an unknown command or option, a missing or malformed value',

  // protocol: the RPC transport under the PDP and audit clients
  PCX_RPC_UNAVAILABLE: 'the peer is not listening on its socket (missing, refused or not permitted)',
  PCX_RPC_TIMEOUT: 'the peer did not answer a call within its deadline',
  PCX_RPC_CLOSED: 'the connection to the peer closed, or the client was closed, before the answer came',
  PCX_RPC_BAD_FRAME: 'the peer sent a frame that is not JSON, has no safe-integer id or is over the frame limit',
  PCX_RPC_OVERLOADED: 'too many calls are in flight on one connection; the call was not sent',
  PCX_RPC_FRAME_TOO_LARGE: 'the request frame is over the frame limit; it was not sent',

  // protocol: identity claims on a request (every enforcement point)
  PCX_IDENTITY_BAD_CREDENTIALS:
    'the credentials a client sent (Proxy-Authorization, X-Portcullis-* headers) are malformed or repeated',
  PCX_IDENTITY_UNPROVEN:
    'the client claims a session other than the configured one without an identity token proving it',

  // policy: a decision request that cannot be evaluated (always a deny)
  PCX_REQ_INVALID: 'the request could not be read as JSON data',
  PCX_REQ_NOT_OBJECT: 'the request is not a JSON object with principal, action, resource and context',
  PCX_REQ_MISSING_ATTRIBUTE: 'a required field or resource attribute of the request is missing',
  PCX_REQ_BAD_TYPE: 'a field or attribute of the request has the wrong type',
  PCX_REQ_UNKNOWN_ACTION: 'the action is neither built in nor declared in the policy set',
  PCX_REQ_BAD_HOST: 'a host attribute of the request is not a valid host name or IP literal',
  PCX_REQ_BAD_PATH: 'a path attribute of the request is not absolute, climbs above / or has a bad escape',
  PCX_REQ_BAD_IP: 'an ip attribute of the request is not an IPv4 or IPv6 address',
  PCX_REQ_BAD_JSON: 'a request line given to `portcullis eval` is not valid JSON',
  PCX_REQ_TOO_LARGE: 'a request line given to `portcullis eval` is over the size limit',

  // policy: syntax errors in a policy file
  PCX_PARSE_UNEXPECTED: 'the policy text has a syntax error',
  PCX_PARSE_TOO_DEEP: 'conditions are nested too deeply to parse',
  PCX_PARSE_EXPECTED_DECLARATION: 'expected a declaration: `policy`, `role`, `let`, `action` or `leases`',
  PCX_PARSE_EXPECTED_NAME: 'expected a name (of a constant, action, policy, role or attribute)',
  PCX_PARSE_EXPECTED_EQUALS: 'expected `=` after the constant name',
  PCX_PARSE_EXPECTED_VALUE: 'expected a value (string, number, boolean, list or constant)',
  PCX_PARSE_EXPECTED_LBRACE: 'expected `{` to open a block',
  PCX_PARSE_EXPECTED_RBRACE: 'expected an attribute declaration or `}` closing the action',
  PCX_PARSE_EXPECTED_COLON: 'expected `:` after the attribute name',
  PCX_PARSE_EXPECTED_TYPE: 'expected a type: string, number, bool, host, path, ip or list',
  PCX_PARSE_EXPECTED_RULE: 'expected a rule (`allow`, `deny`, `ask`), a role or `}` closing the block',
  PCX_PARSE_EXPECTED_STRING: 'expected a string',
  PCX_PARSE_EXPECTED_SCOPE: 'expected `global`, `project`, `blueprint` or `session` after `scope`',
  PCX_PARSE_EXPECTED_ACTION: 'expected an action or action pattern',
  PCX_PARSE_EXPECTED_CONDITION: 'expected a condition',
  PCX_PARSE_EXPECTED_RPAREN: 'expected `)` closing the parenthesis',
  PCX_PARSE_EXPECTED_ATTRIBUTE: '`exists` applies only to an attribute (`principal.*`, `resource.*`, `context.*`)',
  PCX_PARSE_EXPECTED_RBRACKET: 'expected a list element or `]` closing the list',
  PCX_PARSE_UNTERMINATED_STRING: 'a string has no closing `"` before the end of the line',
  PCX_PARSE_BAD_ESCAPE: 'a string has an invalid escape sequence',
  PCX_PARSE_SINGLE_EQUALS: 'a condition uses `=`; comparison is `==`',
  PCX_PARSE_SYMBOL_OPERATOR: 'a condition uses `&&`, `||` or `!`; the language writes `and`, `or`, `not`',
  PCX_PARSE_EXPECTED_FROM: 'expected `from` and the issuers after `leases`',
  PCX_PARSE_EXPECTED_MAX: 'expected `max` and the longest lease lifetime after the issuers of a lease ceiling',
  PCX_PARSE_EXPECTED_DURATION: 'expected a lifetime: a whole number and a unit s, m, h or d (e.g. 8h)',

  // policy: the checker (names, types, values)
  PCX_CHECK_DUPLICATE_LET: 'a constant is defined twice',
  PCX_CHECK_DUPLICATE_ACTION: 'an action is declared twice, or a built-in action is redeclared',
  PCX_CHECK_ACTION_NAME: 'an action name is not valid',
  PCX_CHECK_DUPLICATE_ATTRIBUTE: 'an attribute is declared twice (in one action, or in `attributes` blocks)',
  PCX_CHECK_RESERVED_NAME: 'a constant is named with a reserved word',
  PCX_CHECK_UNKNOWN_TYPE: 'an attribute has an unknown type',
  PCX_CHECK_UNKNOWN_CONSTANT: 'a constant is used but never defined',
  PCX_CHECK_CONSTANT_CYCLE: 'a constant refers to itself',
  PCX_CHECK_UNKNOWN_ROLE: 'a role extends a role that does not exist',
  PCX_CHECK_ROLE_CYCLE: 'roles extend each other in a cycle',
  PCX_CHECK_UNKNOWN_ACTION: 'a rule names an action that is neither built in nor declared',
  PCX_CHECK_UNKNOWN_ATTRIBUTE:
    'a rule uses an attribute that is not built in or declared (by its actions, or in an `attributes` block)',
  PCX_CHECK_ATTRIBUTE_TYPE_CONFLICT: "an attribute has different types across a rule's actions; split the rule",
  PCX_CHECK_OPERATOR_TYPE: "an operator does not apply to the attribute's type",
  PCX_CHECK_OPERAND: 'an operator has the wrong kind of operands (attribute, value or list)',
  PCX_CHECK_TYPE_MISMATCH: "a literal does not have the attribute's type",
  PCX_CHECK_INVALID_HOST: 'a host literal is not a valid host name or IP literal',
  PCX_CHECK_INVALID_IP: 'an IP or CIDR literal is not valid',
  PCX_CHECK_CIDR_HOST_BITS: 'a CIDR literal has host bits set',
  PCX_CHECK_INVALID_PATH: 'a path literal is not absolute or climbs above /',
  PCX_CHECK_PATH_NOT_NORMALISED: 'a path literal is not in normal form',
  PCX_CHECK_PATH_GLOB: 'a path pattern uses `**` inside a segment',
  PCX_CHECK_HOST_GLOB: 'a host pattern is not valid',
  PCX_CHECK_DENY_OPTIONAL: 'warning: a deny depends on an optional attribute and does not apply when it is absent',
  PCX_CHECK_DUPLICATE_POLICY: 'two policies have the same name',
  PCX_CHECK_CEILING_ISSUER: 'a lease ceiling names an issuer that is not 1-256 visible ASCII characters',
  PCX_CHECK_DUPLICATE_CEILING: 'two lease ceilings name the same issuer',
  PCX_CHECK_CEILING_LIFETIME: 'the lifetime of a lease ceiling is under 1s or over 30d',
  PCX_CHECK_CEILING_EFFECT: 'a lease ceiling holds a `deny` or `ask` rule; it holds only `allow` rules',

  // policy: lease grants
  PCX_GRANT_EFFECT: 'a lease grants only `allow` rules',

  // Policy sets as loaded by the PDP and the CLI
  PCX_POLICY_PATH: 'the policy path cannot be read',
  PCX_POLICY_TOO_LARGE: 'a policy file is over the size limit',
  PCX_POLICY_EMPTY: 'no .pol files were found under the policy path',
  PCX_POLICY_COMPILE: 'the policy set has errors; the PDP keeps the last good policy, or denies everything',
  PCX_POLICY_INVALID: 'the policy set given to `portcullis audit replay` does not compile',

  // PDP: the client side (protocol's PdpClient; every one is a deny)
  PCX_PDP_UNAVAILABLE: 'the PDP could not be reached, or closed the connection',
  PCX_PDP_TIMEOUT: 'the PDP did not answer within the deadline',
  PCX_PDP_OVERLOADED: 'too many decisions are in flight to the PDP; the request was not sent',
  PCX_PDP_REQUEST_TOO_LARGE: 'the request is over the frame limit; it was not sent',
  PCX_PDP_BAD_REQUEST: 'the request cannot be encoded as JSON (a BigInt, a cycle); it was not sent',
  PCX_PDP_BAD_ANSWER: 'the PDP sent a malformed answer',
  PCX_PDP_ERROR: 'the PDP answered with an error instead of a decision',
  // PDP: the daemon
  PCX_PDP_BAD_FRAME: 'a client sent a frame that is not a JSON object with a valid id and a request or health',
  PCX_PDP_FRAME_TOO_LARGE: 'a client sent a frame over 1 MiB; the connection is closed',
  PCX_PDP_NO_POLICY: 'no valid policy is loaded, so every request is denied',
  PCX_PDP_INTERNAL: 'the PDP failed to decide this request (a bug); denied',
  PCX_PDP_FILE: 'a file the PDP needs (lease keys, revocations) cannot be read',
  PCX_PDP_VERSION_STORE: 'the policy versions directory cannot be written, so the policy version is not served',
  PCX_PDP_VERSION_MISSING: 'a policy version named for replay is not kept in the versions directory',
  PCX_PDP_VERSION_CORRUPT: 'a kept policy version does not hash to its name (edited or replaced)',
  PCX_PDP_SOCKET_PATH: 'the socket path cannot be used: not a socket, or its directory cannot be created',
  PCX_PDP_SOCKET_IN_USE: 'another process is serving the socket path',
  PCX_PDP_LISTEN: 'the PDP cannot listen on its socket',
  PCX_PDP_METRICS_ADDRESS: 'the --metrics address is not HOST:PORT with a valid port',
  PCX_PDP_METRICS_NOT_LOOPBACK: 'the metrics address is not loopback and remote metrics were not allowed',
  PCX_PDP_METRICS_LISTEN: 'the metrics server cannot listen on its address',
  PCX_PDP_LEASE_AUDIENCE: 'lease keys are configured without a valid audience (--lease-audience)',
  PCX_PDP_LEASE_SKEW: 'the lease clock skew (--lease-clock-skew) is not a whole number of seconds from 0 to 3600',
  PCX_PDP_REVOCATION_INVALID: 'the revocation list has a line that is not "JTI" or "JTI EXP"; the last good list stays',
  PCX_PDP_REVOCATION_EMPTY: 'the revocation list was emptied while leases are revoked; the last good list stays',
  PCX_PDP_IDENTITY_UNPROVEN:
    'context.identity does not verify, or does not prove the principal and session the request claims; denied',

  // Leases: keys and grants
  PCX_LEASE_KEY: 'the lease signing key cannot be read or is not an Ed25519 private JWK',
  PCX_LEASE_KEY_EXISTS: 'the key file already exists (a key is never overwritten) or cannot be created',
  PCX_LEASE_KEYS: 'the lease keys file is not a JWKS of Ed25519 public keys',
  PCX_LEASE_GRANT: 'the policy set or the grant of a lease to be issued does not compile',
  PCX_LEASE_ISSUE: 'a lease or identity token cannot be issued as asked (lifetime, audience, subject, size)',

  // Audit: the sink, its log and the offline tools
  PCX_AUDIT_BAD_FRAME:
    'a client sent a frame that is not JSON, has no valid id (a safe integer or a short string), ' +
    'or has neither record nor health',
  PCX_AUDIT_FRAME_TOO_LARGE: 'a client sent a frame over the frame limit; the connection is closed',
  PCX_AUDIT_INVALID_RECORD: 'the audit record is malformed; it was not written',
  PCX_AUDIT_CLOSED: 'the audit sink is shutting down; the record was not written',
  PCX_AUDIT_OVERLOADED: 'too many records are waiting to be written; the record was refused',
  PCX_AUDIT_WRITE_FAILED: 'writing the audit log failed (e.g. a full disk); the record was not written',
  PCX_AUDIT_SYNC_FAILED: 'fsync of the audit log failed; the sink refuses records until restarted',
  PCX_AUDIT_REFUSED: 'the audit sink refused the record without a known code',
  PCX_AUDIT_BAD_RESPONSE: 'the audit sink sent a malformed answer',
  PCX_AUDIT_SOCKET_PATH: 'the socket path cannot be used: not a socket, or its directory cannot be created',
  PCX_AUDIT_SOCKET_IN_USE: 'another process is serving the socket path',
  PCX_AUDIT_LISTEN: 'the audit sink cannot listen on its socket',
  PCX_AUDIT_DIR_UNWRITABLE: 'the audit directory cannot be created or written',
  PCX_AUDIT_LOCKED: 'another audit sink is writing the same log directory',
  PCX_AUDIT_BAD_ORIGIN:
    'the log origin is empty, over 256 characters, has a control character or a leading or trailing space',
  PCX_AUDIT_LOG_CORRUPT: 'the audit log is damaged; the sink will not append to it',
  PCX_AUDIT_HISTORY_REWRITTEN:
    'the records under the latest checkpoint no longer hash to its signed root; the sink will not sign over them',
  PCX_AUDIT_NOT_A_LOG: 'the directory is not an audit log',
  PCX_AUDIT_NO_KEY: 'a key file is missing or cannot be read',
  PCX_AUDIT_BAD_KEY: 'a key is not in the expected format or is damaged',
  PCX_AUDIT_BAD_KEY_NAME: 'a key name is empty, over 128 characters, or contains a space, a control character or "+"',
  PCX_AUDIT_KEY_EXISTS: 'the key file already exists (a key is never overwritten) or cannot be created',
  PCX_AUDIT_KEY_PERMISSIONS: 'the private key file is readable by other users',
  PCX_AUDIT_NO_CHECKPOINT: 'the log has no checkpoint yet',
  PCX_AUDIT_BAD_CHECKPOINT: 'the latest checkpoint is invalid or does not match the log',
  PCX_AUDIT_NOT_COVERED: 'the record is not covered by the latest checkpoint yet',
  PCX_AUDIT_NOT_FOUND: 'the record is not in the log',
  PCX_AUDIT_BAD_PROOF: 'the proof file is not the output of `portcullis audit prove`',
  PCX_AUDIT_INDEX: 'the SQLite index cannot be opened or updated',

  // Egress: the forward proxy (answers and start-up)
  PCX_EGRESS_BAD_TARGET: 'the request target is not an absolute http:// URI or CONNECT host:port',
  PCX_EGRESS_BAD_HOST: 'the target host is not acceptable (malformed, or an evasive spelling)',
  PCX_EGRESS_HOST_MISMATCH: 'the Host header is invalid or differs from the request target',
  PCX_EGRESS_METHOD: 'the method is refused (it reflects the request, credentials included)',
  PCX_EGRESS_BAD_REQUEST: 'the HTTP request is malformed or its framing is ambiguous',
  PCX_EGRESS_HEADERS_TOO_LARGE: 'the request head is over the size limit',
  PCX_EGRESS_HEADERS_TIMEOUT: 'the request head did not arrive in time',
  PCX_EGRESS_UPGRADE: 'a protocol upgrade through an absolute-URI request is not supported; use CONNECT',
  PCX_EGRESS_FLOOR: 'the destination is refused whatever the policy says (loopback, link-local, cloud metadata…)',
  PCX_EGRESS_DNS: 'the target host did not resolve to a usable address',
  PCX_EGRESS_AUDIT_UNAVAILABLE: 'the audit sink did not acknowledge the record; nothing was forwarded',
  PCX_EGRESS_UPSTREAM: 'the connection to the upstream server failed',
  PCX_EGRESS_UPSTREAM_TIMEOUT: 'the upstream server did not answer in time',
  PCX_EGRESS_IDLE_TIMEOUT: 'the tunnel was idle for too long and was closed',
  PCX_EGRESS_CLIENT_CLOSED: 'the client closed the connection before the request was forwarded',
  PCX_EGRESS_INTERNAL: 'the proxy failed on this request (a bug); nothing was forwarded',
  PCX_EGRESS_LISTEN: 'the proxy or its metrics server cannot listen on its address',
  PCX_EGRESS_BAD_CIDR: 'a CIDR option is malformed or has host bits set',
  PCX_EGRESS_BAD_DNS: 'the DNS server list is missing or malformed',
  PCX_EGRESS_METRICS_NOT_LOOPBACK: 'the metrics address is not loopback',

  // Vault: secrets at rest, unlock, injection (packages/vault)
  PCX_VAULT_NOT_FOUND: 'the workspace has no vault file (create one with `portcullis vault init`)',
  PCX_VAULT_EXISTS: 'the workspace already has a vault; init refuses to replace it',
  PCX_VAULT_CORRUPT: 'the vault file is not a readable vault: not SQLite, damaged, or of another format',
  PCX_VAULT_WRONG_WORKSPACE: 'the vault file belongs to another workspace than the one named',
  PCX_VAULT_BAD_WORKSPACE: 'the workspace name is not 1-64 letters, digits, `.`, `_` or `-`',
  PCX_VAULT_BAD_NAME: 'the secret name is not 1-128 letters, digits, `_`, `.`, `-` or `/`',
  PCX_VAULT_UNKNOWN_SECRET: 'the workspace has no secret of that name',
  PCX_VAULT_UNKNOWN_VERSION: 'the secret has no version of that number',
  PCX_VAULT_LOCKED: 'the workspace is locked: no unlocked KEK in the agent and no credential given',
  PCX_VAULT_BAD_CREDENTIAL: "the passphrase, key file or PIN does not open the workspace's KEK",
  PCX_VAULT_DECRYPT_FAILED: 'a ciphertext, wrapped key or its binding failed authentication: the vault was changed',
  PCX_VAULT_KEY_FILE: 'the key file cannot be read, created, or is not a vault key file',
  PCX_VAULT_KEY_FILE_PERMISSIONS: 'the key file is readable by group or others, or belongs to another user',
  PCX_VAULT_KDF_TOO_WEAK: "the Argon2id parameters asked for are below libsodium's moderate profile",
  PCX_VAULT_PKCS11: 'the PKCS#11 module, token or key object cannot be used',
  PCX_VAULT_EMPTY_VALUE: 'the value to store is empty; nothing was stored',
  PCX_VAULT_VALUE_TOO_LARGE: 'the value to store is over the size limit; nothing was stored',
  PCX_VAULT_VALUE_ON_ARGV: 'a secret value was given on the command line, where other processes can read it',
  PCX_VAULT_REVEAL_REQUIRED: '`vault get` prints a value only with --reveal',
  PCX_VAULT_DENIED: 'the PDP did not allow reading or injecting the secret (or could not be asked)',
  PCX_VAULT_AUDIT_FAILED: 'the audit sink did not acknowledge the record; the secret was not released',
  PCX_VAULT_FRAMING: 'a value cannot be written in the chosen stdin framing (e.g. a newline in line framing)',
  PCX_VAULT_EXEC_FAILED: 'the command given to `vault exec` could not be started',
  PCX_VAULT_CHILD_EXITED: 'the command exited or closed its input before reading all of its secrets',
  PCX_VAULT_AGENT_UNAVAILABLE: 'the vault agent is not running on its socket, or did not answer',
  PCX_VAULT_AGENT_SOCKET: "the agent's socket path or directory is unsafe (not owned by the user, or not 0700)",
  PCX_VAULT_AGENT_SOCKET_IN_USE: 'another vault agent is serving the socket',
  PCX_VAULT_AGENT_LISTEN: 'the vault agent cannot listen on its socket',
  PCX_VAULT_AGENT_BAD_FRAME: 'a frame sent to the vault agent is not JSON, lacks an id, or is not a known request',
  PCX_VAULT_AGENT_FRAME_TOO_LARGE: 'a frame sent to the vault agent is over its size limit',
  PCX_VAULT_FINGERPRINTS: 'the fingerprint file cannot be written',
  PCX_VAULT_CREDENTIAL_FILE: 'a --passphrase-file or --pin-file cannot be read, or is empty',

  // Scan: fingerprint and rules files (packages/scan)
  PCX_SCAN_BAD_RULES: 'the rules file is not JSON, or a field is missing, misspelt or wrong (with file:line:col)',
  PCX_SCAN_BAD_FINGERPRINTS: 'the fingerprint file is not JSON or not the shape `portcullis vault fingerprints` writes',
  PCX_SCAN_FINGERPRINTS_VERSION: 'the fingerprint file has a format version this scanner does not read',

  // Comms: the message filter (packages/comms) and its client
  PCX_COMMS_SOCKET_PATH:
    "the message filter's socket path cannot be used: not a socket, or its directory cannot be created",
  PCX_COMMS_SOCKET_IN_USE: "another process is serving the message filter's socket path",
  PCX_COMMS_LISTEN: 'the message filter cannot listen on its socket',
  PCX_COMMS_FILE: 'the --fingerprints or --rules file cannot be read',
  PCX_COMMS_BAD_REQUEST: 'the check request is not JSON {channel, to, text} with the right types and sizes',
  PCX_COMMS_BODY_TOO_LARGE: 'the check request body is over the size limit',
  PCX_COMMS_MEDIA_TYPE: 'the check request is not sent as application/json',
  PCX_COMMS_NOT_FOUND: 'no such endpoint (the filter serves POST /v1/messages/check and GET /v1/health)',
  PCX_COMMS_METHOD: 'the endpoint does not take this HTTP method',
  PCX_COMMS_AUDIT_UNAVAILABLE: 'the audit sink did not acknowledge the record; the message is denied',
  PCX_COMMS_INTERNAL: 'the message filter failed on this request (a bug); the message is denied',
  PCX_COMMS_UNAVAILABLE: 'the client could not reach the message filter, or it did not answer in time',
  PCX_COMMS_BAD_ANSWER: 'the message filter sent an answer the client cannot read',

  // CLI: one-shot commands
  PCX_CLI_REQUEST_FILE: 'the request file given with --request @FILE cannot be read',
  PCX_CLI_BAD_JSON: 'the request given with --request is not valid JSON',
  PCX_CLI_INPUT: 'the --input file cannot be read',

  // `portcullis test`: policy test files
  PCX_TEST_FILE: 'a policy test file cannot be read or is malformed',

  // `portcullis up`
  PCX_UP_FAILED: 'a daemon exited before it was ready',
} as const;

/** Every code Portcullis creates. */
export type PcxCode = keyof typeof ERROR_CODES;

/** Whether `code` is in the table, e.g. to tell one of ours from whatever a peer sent. */
export function isPcxCode(code: unknown): code is PcxCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}
