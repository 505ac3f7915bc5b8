import t from 'tap';
import { canonicalize, prepareAuditRecord, REDACTED, type PcxError } from '../src/index.js';

t.test('RFC 8785 §3.2.2 example: numbers, escapes and literals', async (t) => {
  // The input text of the RFC, parsed with JSON.parse (as JCS prescribes), then canonicalised.
  const input = `{
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\"\\/",
    "literals": [null, true, false]
  }`;
  t.equal(
    canonicalize(JSON.parse(input)),
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
      '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
  );
});

t.test('RFC 8785 §3.2.3 example: members sorted by UTF-16 code units', async (t) => {
  const input = `{
    "\\u20ac": "Euro Sign",
    "\\r": "Carriage Return",
    "\\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\\ud83d\\ude00": "Emoji: Grinning Face",
    "\\u0080": "Control",
    "\\u00f6": "Latin Small Letter O With Diaeresis"
  }`;
  // Read the member values in text order (re-parsing would reorder the integer-like key "1").
  const values = [...canonicalize(JSON.parse(input)).matchAll(/:"([^"]*)"/g)].map((m) => m[1]);
  t.same(values, [
    'Carriage Return',
    'One',
    'Control',
    'Latin Small Letter O With Diaeresis',
    'Euro Sign',
    'Emoji: Grinning Face',
    'Hebrew Letter Dalet With Dagesh',
  ]);
  // U+1F600 (surrogates D83D DE00) sorts before U+FB33 by code units, though after it by code points.
  t.ok(canonicalize(JSON.parse(input)).indexOf('😀') < canonicalize(JSON.parse(input)).indexOf('\ufb33'));
});

t.test('RFC 8785 Appendix B: IEEE 754 → ECMAScript number serialisation', async (t) => {
  const cases: [string, string][] = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ];
  for (const [bits, expected] of cases) t.equal(canonicalize(Buffer.from(bits, 'hex').readDoubleBE(0)), expected, bits);
  for (const bits of ['7fffffffffffffff', '7ff0000000000000'])
    t.throws(() => canonicalize(Buffer.from(bits, 'hex').readDoubleBE(0)), bits);
});

t.test('canonicalize rejects what has no canonical form', async (t) => {
  t.throws(() => canonicalize({ a: '\ud800' }), /lone surrogate/);
  t.throws(() => canonicalize([1n]), /bigint/);
  t.throws(() => canonicalize({ f: () => 1 }), /function/);
  t.equal(canonicalize({ b: undefined, a: [] }), '{"a":[]}');
  t.equal(canonicalize({ b: { d: 1, c: 'x' }, a: [{ z: 1, y: 2 }] }), '{"a":[{"y":2,"z":1}],"b":{"c":"x","d":1}}');
});

function jwt(payload: object): string {
  const b = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: 'EdDSA', typ: 'JWT' })}.${b(payload)}.${Buffer.from('signature-bytes').toString('base64url')}`;
}

const base = {
  source: 'egress',
  principal: { id: 'agent-7' },
  action: 'http.request',
  resource: { host: 'api.example.com' },
  decision: 'allow',
  reasons: [],
};

t.test('redaction: lease tokens become their jti, credential-named fields become [redacted]', async (t) => {
  const token = jwt({ jti: 'lease-42', sub: 'agent-7' });
  const r = prepareAuditRecord({
    ...base,
    principal: { id: 'agent-7', api_key: 'sk-live-1' },
    resource: { host: 'h', headers: { Authorization: 'Bearer abc', Cookie: 'sid=1', accept: 'text/html' } },
    context: {
      project: 'p',
      leases: [token, 'garbage.not.jwt', 42, 'lease-already-an-id'],
      nested: [{ refresh_token: 'r' }, { Password: 'p', ok: 1 }],
    },
    outcome: { status: 200, error: { code: 'X', message: 'm' } },
  });
  t.same(r.context!.leases, ['lease-42', REDACTED, REDACTED, 'lease-already-an-id']);
  t.same(r.resource, { host: 'h', headers: { Authorization: REDACTED, Cookie: REDACTED, accept: 'text/html' } });
  t.same(r.principal, { id: 'agent-7', api_key: REDACTED });
  t.same(r.context!.nested, [{ refresh_token: REDACTED }, { Password: REDACTED, ok: 1 }]);
  const text = JSON.stringify(r);
  for (const secret of [token, 'Bearer abc', 'sid=1', 'sk-live-1', 'signature-bytes'])
    t.notOk(text.includes(secret), `no ${secret.slice(0, 10)} in the record`);
  // Idempotent: the sink re-applies it to what a client already redacted.
  t.same(prepareAuditRecord(r), r);
  // A single string in place of the array is not kept either.
  t.same(prepareAuditRecord({ ...base, context: { leases: token } }).context!.leases, REDACTED);
});

t.test('member names __proto__, constructor and prototype are kept as members, at any depth', async (t) => {
  const resource = JSON.parse('{"__proto__":{"a":{"__proto__":{"secret":"s","b":2}}},"constructor":1,"prototype":[]}');
  const r = prepareAuditRecord({ ...base, resource, context: JSON.parse('{"__proto__":{"session":"s-1"}}') });
  t.equal(
    JSON.stringify(r.resource),
    '{"__proto__":{"a":{"__proto__":{"b":2,"secret":"[redacted]"}}},"constructor":1,"prototype":[]}',
  );
  t.equal(JSON.stringify(r.context), '{"__proto__":{"session":"s-1"}}');
  t.equal(canonicalize(prepareAuditRecord(r)), canonicalize(r), 'idempotent');
});

t.test('validation names the offending field with a stable code', async (t) => {
  const bad: [unknown, RegExp][] = [
    [null, /JSON object/],
    [{ ...base, seq: 3 }, /"seq" is assigned by the sink/],
    [{ ...base, hash: 'x' }, /"hash" is assigned/],
    [{ ...base, extra: 1 }, /unknown field "extra"/],
    [{ ...base, source: '' }, /"source"/],
    [{ ...base, principal: { roles: [] } }, /"principal"/],
    [{ ...base, decision: 'maybe' }, /"decision"/],
    [{ ...base, reasons: ['x'] }, /"reasons"/],
    [{ ...base, time: 'yesterday' }, /"time"/],
    [{ ...base, resource: { n: Infinity } }, /no JSON form/],
    [{ ...base, resource: { s: '\udc00' } }, /lone surrogate/],
  ];
  for (const [input, re] of bad) {
    try {
      prepareAuditRecord(input);
      t.fail(`accepted ${JSON.stringify(input)}`);
    } catch (e) {
      t.equal((e as PcxError).code, 'PCX_AUDIT_INVALID_RECORD');
      t.match((e as Error).message, re);
    }
  }
});
