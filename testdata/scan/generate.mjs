// The scanner's corpus generator: writes corpus/known-secrets.jsonl (fake secrets, the vault's
// side), corpus/secrets.jsonl (texts carrying a secret, each with what must be found) and
// corpus/benign.jsonl (texts carrying none). Deterministic: a seeded PRNG and no clock, so the
// committed files are exactly what this prints (packages/scan/test/corpus.test.ts checks that).
// Every value here is random and fake. Run: node testdata/scan/generate.mjs [OUT_DIR]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2] ?? join(import.meta.dirname, 'corpus');

// xorshift128+ seeded with fixed words: the same sequence on every machine and Node version.
let s0 = 0x9e3779b9n;
let s1 = 0x243f6a88n;
const M64 = (1n << 64n) - 1n;
function next() {
  let x = s0;
  const y = s1;
  s0 = y;
  x ^= (x << 23n) & M64;
  s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
  return Number(((s1 + y) & M64) >> 11n) / 2 ** 53;
}
const int = (n) => Math.floor(next() * n);
const pick = (xs) => xs[int(xs.length)];
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER_DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const B64 = `${ALNUM}+/`;
const HEX = '0123456789abcdef';
const str = (n, alphabet = ALNUM) => Array.from({ length: n }, () => alphabet[int(alphabet.length)]).join('');
const bytes = (n) => Buffer.from(Array.from({ length: n }, () => int(256)));
const uuid = () => `${str(8, HEX)}-${str(4, HEX)}-4${str(3, HEX)}-${pick('89ab')}${str(3, HEX)}-${str(12, HEX)}`;
const words =
  'the request was handled by worker pool after retry backoff cache miss upstream latency budget queue drained ' +
  'index rebuilt schema migration applied user profile updated payment order shipped invoice rendered template';
const sentence = (n) => Array.from({ length: n }, () => pick(words.split(' '))).join(' ');
const ip = () => `10.${int(256)}.${int(256)}.${int(256)}`;
const isoTime = (i) =>
  `2026-03-${String(1 + (i % 28)).padStart(2, '0')}T${String(i % 24).padStart(2, '0')}:14:09.` +
  `${String(i % 1000).padStart(3, '0')}Z`;

// --- the known secrets (what a vault would hold) ---------------------------------------------

const SPECIAL = '!#$%&*+-./:=?@^_~';
const known = [];
const addKnown = (name, value, binary = false) => known.push({ name, version: 1 + int(3), value, binary });
for (let i = 0; i < 6; i++) addKnown(`api-key-${i}`, str(32 + int(9)));
for (let i = 0; i < 4; i++) addKnown(`password-${i}`, str(14 + int(8), ALNUM + SPECIAL));
addKnown('password-quotes', `q"7\\Lp/${str(6)}'x`);
addKnown('password-spaces', `correct horse ${str(6)} staple`);
addKnown('password-unicode', `pässwörd-${str(6)}-日本-🔑`);
addKnown('stripe-live', `sk_live_${str(24)}`);
addKnown('db-url-password', `${str(10)}%${str(4)}&${str(4)}`);
addKnown('webhook-secret', `whsec_${str(32, B64)}`);
addKnown('short-pin-ish', str(8));
addKnown('hex-token', str(40, HEX));
for (let i = 0; i < 2; i++) addKnown(`binary-key-${i}`, bytes(32).toString('base64'), true);
addKnown('long-cert-key', str(1500, B64));

const valueBytes = (k) => (k.binary ? Buffer.from(k.value, 'base64') : Buffer.from(k.value, 'utf8'));

// --- texts carrying a known secret -------------------------------------------------------------

const secrets = [];
const addSecret = (form, expect, text) => secrets.push({ id: `s${secrets.length}`, form, ...expect, text });

const b64 = (b) => Buffer.from(b).toString('base64');
const b64url = (b) => Buffer.from(b).toString('base64url');
const wrap = (s, n) => s.match(new RegExp(`.{1,${n}}`, 'g')).join('\n');
const splitAt = (s, n) => {
  const parts = [];
  for (let i = 0; i < s.length; i += n) parts.push(s.slice(i, i + n));
  return parts;
};
// Chunks of a string by characters (not UTF-16 units): a split never cuts a surrogate pair.
const splitChars = (s, n) => splitAt([...s], n).map((p) => p.join(''));
// JSON strings with every character escaped as \uXXXX (what some serialisers emit).
const uEscape = (s) =>
  [...s]
    .map((c) => {
      const units = c.length === 2 ? [c.charCodeAt(0), c.charCodeAt(1)] : [c.charCodeAt(0)];
      return units.map((u) => `\\u${u.toString(16).padStart(4, '0')}`).join('');
    })
    .join('');
const jsonSafe = (s) => JSON.stringify(s) === `"${s}"`;

for (const k of known) {
  const v = k.value;
  const raw = valueBytes(k);
  const expect = { kind: 'known-secret', secret: k.name };
  const text = !k.binary;
  if (text) {
    addSecret('prose', expect, `Hi team, the new credential for staging is ${v} — please rotate the old one.`);
    addSecret('env-file', expect, `# staging\nNODE_ENV=production\nSERVICE_CREDENTIAL=${v}\nPORT=8080\n`);
    addSecret(
      'json-config',
      expect,
      JSON.stringify({ service: 'billing', retries: 3, auth: { value: v, rotated: false } }, null, 2),
    );
    addSecret('json-unicode-escapes', expect, `{"name":"${k.name}","value":"${uEscape(v)}"}`);
    addSecret(
      'json-log-line',
      expect,
      `${JSON.stringify({
        level: 'debug',
        time: isoTime(secrets.length),
        msg: 'outgoing request',
        headers: { 'x-api-key': v },
      })}\n`,
    );
    if (jsonSafe(v)) {
      // A JSON document embedded as a string inside another: escaped twice.
      const inner = JSON.stringify({ token: v });
      addSecret('json-double-encoded', expect, JSON.stringify({ payload: inner, id: uuid() }));
    }
    const parts = splitChars(v, 5 + int(6));
    addSecret(
      'split-js-concat',
      expect,
      `const client = new Client({\n  key: ${parts.map((p) => JSON.stringify(p)).join(' +\n    ')},\n});\n`,
    );
    addSecret(
      'split-python-implicit',
      expect,
      `API_KEY = (\n${parts.map((p) => `    ${JSON.stringify(p)}`).join('\n')}\n)\n`,
    );
    if (!/["\\$`]/.test(v))
      addSecret('split-shell-continuation', expect, `export TOKEN="${parts.join('\\\n')}"\ncurl -H "X: $TOKEN" x\n`);
    addSecret('split-across-lines', expect, `the key is\n${splitChars(v, 8).join('\n')}\nend of key\n`);
    addSecret('url-query', expect, `GET /v1/export?format=csv&api_key=${encodeURIComponent(v)}&page=2 HTTP/1.1`);
    addSecret(
      'url-in-log',
      expect,
      `${ip()} - - [04/Mar/2026:10:12:01 +0000] ` +
        `"GET /cb?code=${encodeURIComponent(v)}&state=${str(8)} HTTP/1.1" 200 512`,
    );
    addSecret(
      'python-code',
      expect,
      `import requests\n\nSESSION = requests.Session()\n` +
        `SESSION.headers["Authorization"] = ${JSON.stringify(`Bearer ${v}`)}\n`,
    );
    addSecret(
      'go-code',
      expect,
      `package main\n\nconst apiKey = ${JSON.stringify(v)}\n\nfunc main() { run(apiKey) }\n`,
    );
    addSecret('yaml', expect, `spec:\n  env:\n    - name: UPSTREAM_KEY\n      value: ${JSON.stringify(v)}\n`);
    addSecret(
      'stack-trace-env',
      expect,
      `Error: connect ECONNREFUSED\n    at TCPConnectWrap.afterConnect (node:net:1555:16)\n` +
        `env: {"HOME":"/root","SECRET":${JSON.stringify(v)}}\n`,
    );
    addSecret('markdown', expect, `## Setup\n\n\`\`\`sh\nexport KEY='${v.replaceAll("'", "'\\''")}'\n\`\`\`\n`);
  }
  // Base64 of a payload in which the secret starts at every alignment (0-5 bytes of prefix).
  for (let prefix = 0; prefix < 6; prefix++) {
    const payload = Buffer.concat([Buffer.from(str(prefix)), raw, Buffer.from(`:${str(int(4))}`)]);
    addSecret(`base64-offset-${prefix}`, expect, `payload: ${b64(payload)}\n`);
  }
  const big = Buffer.concat([Buffer.from(`${sentence(20)}\n`), raw, Buffer.from(`\n${sentence(30)}`)]);
  addSecret('base64-mime-76', expect, `Content-Transfer-Encoding: base64\n\n${wrap(b64(big), 76)}\n`);
  addSecret('base64url', expect, `https://app.example.com/s/${b64url(Buffer.concat([bytes(int(3)), raw]))}`);
  const user = str(3 + int(6)).toLowerCase();
  addSecret('basic-auth', expect, `Authorization: Basic ${b64(Buffer.concat([Buffer.from(`${user}:`), raw]))}\r\n`);
  addSecret('hex', expect, `secret blob: ${raw.toString('hex')}\n`);
  addSecret(
    'hex-dump-spaced-upper',
    expect,
    splitAt(raw.toString('hex').toUpperCase(), 2)
      .map((h, i) => (i % 16 === 15 ? `${h}\n` : `${h} `))
      .join(''),
  );
}

// --- texts carrying a credential the pattern rules must find -------------------------------------

const pem = () =>
  `-----BEGIN ${pick(['RSA ', 'EC ', 'OPENSSH ', ''])}PRIVATE KEY-----\n` +
  `${wrap(str(1100 + int(500), B64), 64)}\n-----END ${'PRIVATE KEY'}-----`;
const jwtPart = (o) => b64url(Buffer.from(JSON.stringify(o)));
const families = {
  aws: () => `AKIA${str(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}`,
  'aws-secret': () => str(40, B64),
  github: () => (next() < 0.7 ? `ghp_${str(36)}` : `github_pat_${str(22)}_${str(59)}`),
  gitlab: () => `glpat-${str(20, `${ALNUM}_-`)}`,
  slack: () =>
    next() < 0.6
      ? `xoxb-${str(11, '0123456789')}-${str(13, '0123456789')}-${str(24)}`
      : `https://hooks.slack.com/services/T${str(8, UPPER_DIGITS)}/B${str(10, UPPER_DIGITS)}/${str(24)}`,
  'private-key': pem,
  jwt: () =>
    `${jwtPart({ alg: 'HS256', typ: 'JWT' })}.` +
    `${jwtPart({ sub: uuid(), iat: 1767225600 + int(1e6), scope: 'read' })}.${str(43, `${ALNUM}_-`)}`,
  generic: () => str(18 + int(20), `${ALNUM}!#$%^&*_-`),
};
const contexts = [
  (name, v) => `${name.toUpperCase()}=${v}\n`,
  (name, v) => `${name} = ${JSON.stringify(v)}\n`,
  (name, v) => `const ${name.replace(/_(.)/g, (_, c) => c.toUpperCase())} = '${v}';\n`,
  (name, v) => `${name}: ${JSON.stringify(v)}\n`,
  (name, v) => `${JSON.stringify({ [name]: v })}\n`,
  (name, v) => `${isoTime(7)} INFO boot config loaded ${name}=${v} pid=4411\n`,
  (name, v) => `export ${name.toUpperCase()}='${v}'\n`,
  (name, v) => `docker run -e ${name.toUpperCase()}=${v} registry.example.com/app:1.4\n`,
];
const patternName = {
  aws: 'aws_access_key_id',
  'aws-secret': 'aws_secret_access_key',
  github: 'github_token',
  gitlab: 'gitlab_token',
  slack: 'slack_webhook',
  'private-key': 'tls_private_key',
  jwt: 'session_jwt',
  generic: 'db_password',
};
for (const [family, make] of Object.entries(families)) {
  const kind = family === 'aws-secret' ? 'aws' : family;
  for (const [n, context] of contexts.entries()) {
    for (let rep = 0; rep < 2; rep++) {
      const v = make();
      // A PEM block keeps its lines: it goes in as a block, not a one-line value.
      const text =
        family === 'private-key'
          ? `# ${sentence(4)}\n${v}\n${sentence(6)}\n`
          : `${sentence(5)}\n${context(patternName[family], v)}`;
      secrets.push({ id: `p${secrets.length}`, form: `pattern-context-${n}`, kind, text });
    }
  }
}

// --- benign texts --------------------------------------------------------------------------------

const benign = [];
const addBenign = (category, text) => benign.push({ id: `b${benign.length}`, category, text });

for (let i = 0; i < 50; i++) {
  const fn = pick(['loadConfig', 'fetchUser', 'renderPage', 'parseHeader', 'retryRequest']);
  addBenign(
    'code',
    pick([
      () =>
        `export async function ${fn}(id) {\n  const token = await getToken();\n` +
        `  const res = await fetch(\`/api/users/\${id}\`, { headers: { authorization: \`Bearer \${token}\` } });\n` +
        `  if (!res.ok) throw new Error('status ' + res.status);\n  return res.json();\n}\n`,
      () =>
        `def ${fn}(session, user_id):\n    password = os.environ["DB_PASSWORD"]\n` +
        `    api_key = settings.API_KEY\n    secret_name = "prod/db/${str(6).toLowerCase()}"\n` +
        `    return session.get(f"/users/{user_id}", timeout=${1 + int(30)})\n`,
      () =>
        `func ${fn}(ctx context.Context) error {\n\ttoken, err := auth.TokenFromContext(ctx)\n` +
        `\tif err != nil {\n\t\treturn fmt.Errorf("no token: %w", err)\n\t}\n\treturn client.Do(ctx, token)\n` +
        `}\n`,
      () =>
        `password_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12))\n` +
        `if not hmac.compare_digest(stored, password_hash):\n    raise AuthError("bad password")\n`,
      () =>
        `SECRET_KEY = os.getenv("SECRET_KEY", "")\n` +
        `AUTH_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]\n` +
        `TOKEN_TTL_SECONDS = ${60 * (1 + int(60))}\n`,
      () =>
        `apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-credentials\nstringData:\n` +
        `  password: \${DB_PASSWORD}\n  token: "{{ .Values.token }}"\n`,
      () =>
        `# ${sentence(8)}\nfor (let i = 0; i < items.length; i++) {\n` +
        `  total += items[i].price * items[i].quantity;\n}\nconsole.log('total', total.toFixed(2));\n`,
      () =>
        `"author": "Jane Doe <jane.doe@example.com>",\n"license": "MIT",\n` +
        `"keywords": ["auth", "token", "oauth2", "jwt"],\n"repository": "github:example/auth-helpers"\n`,
    ])(),
  );
}
for (let i = 0; i < 50; i++) {
  const lines = Array.from({ length: 3 + int(8) }, (_, j) =>
    pick([
      () => `${isoTime(i * 10 + j)} INFO  [req ${uuid()}] GET /api/v2/orders/${int(1e6)} 200 ${int(900)}ms`,
      () =>
        `${ip()} - - [04/Mar/2026:10:${String(j).padStart(2, '0')}:01 +0000] ` +
        '"POST /login HTTP/1.1" 302 0 "-" "Mozilla/5.0"',
      () => `${isoTime(j)} WARN token refresh scheduled in ${int(3600)}s for session ${uuid()}`,
      () => `${isoTime(j)} DEBUG auth: user ${int(1e5)} authenticated via oauth2 provider=google`,
      () => `level=info ts=${isoTime(j)} caller=main.go:${int(500)} msg="${sentence(6)}" trace_id=${str(32, HEX)}`,
      () =>
        `Mar  4 10:12:${String(j).padStart(2, '0')} host sshd[${int(65535)}]: Accepted publickey for deploy ` +
        `from ${ip()} port ${int(65535)} ssh2: ED25519 SHA256:${str(43, B64)}`,
    ])(),
  );
  addBenign('log', `${lines.join('\n')}\n`);
}
for (let i = 0; i < 40; i++) {
  addBenign(
    'uuid',
    pick([
      () => Array.from({ length: 5 + int(20) }, uuid).join('\n'),
      () => JSON.stringify({ id: uuid(), parent_id: uuid(), request_id: uuid(), created: isoTime(i) }),
      () => `INSERT INTO sessions (id, user_id) VALUES ('${uuid()}', '${uuid()}');`,
    ])(),
  );
}
for (let i = 0; i < 40; i++) {
  addBenign(
    'git-hash',
    pick([
      () => Array.from({ length: 5 + int(10) }, () => `${str(7, HEX)} ${sentence(3 + int(5))}`).join('\n'),
      () =>
        `commit ${str(40, HEX)}\nAuthor: Dev One <dev1@example.com>\nDate:   Wed Mar 4 10:12:01 2026 +0000\n\n` +
        `    ${sentence(6)}\n`,
      () => `${str(40, HEX)} refs/heads/main\n${str(40, HEX)} refs/tags/v1.${int(20)}.${int(10)}\n`,
      () => `index ${str(7, HEX)}..${str(7, HEX)} 100644\n--- a/src/app.ts\n+++ b/src/app.ts\n@@ -1,3 +1,4 @@\n`,
      () => `Merge: ${str(8, HEX)} ${str(8, HEX)}\ngit checkout ${str(40, HEX)}\nsha256:${str(64, HEX)}`,
    ])(),
  );
}
for (let i = 0; i < 40; i++) {
  const img = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), bytes(200 + int(2000))]);
  addBenign(
    'base64-image',
    pick([
      () => `<img alt="logo" src="data:image/png;base64,${b64(img)}">`,
      () => `.icon { background: url(data:image/png;base64,${b64(img)}); }`,
      () => JSON.stringify({ avatar: `data:image/png;base64,${b64(img)}`, width: 64 }),
      () => `Content-Type: image/png\nContent-Transfer-Encoding: base64\n\n${wrap(b64(img), 76)}\n`,
    ])(),
  );
}
const ident = () =>
  pick('abcdefghijklmnopqrstuvwxyz') + (next() < 0.5 ? pick('abcdefghijklmnopqrstuvwxyz0123456789_$') : '');
for (let i = 0; i < 40; i++) {
  const parts = Array.from({ length: 30 + int(60) }, () =>
    pick([
      () => `var ${ident()}=${ident()}(${ident()},${int(1000)});`,
      () => `function ${ident()}(${ident()},${ident()}){return ${ident()}.${ident()}(${ident()})||${ident()}}`,
      () => `${ident()}.token=${ident()}.headers.authorization;`,
      () => `if(!${ident()})throw new Error("invalid token");`,
      () => `${ident()}=${ident()}?${ident()}:"${str(int(12)).toLowerCase()}";`,
      () => `${ident()}.prototype.${ident()}=function(){return this.${ident()}};`,
      () => `"${str(int(40))}".split("").reverse().join("");`,
      () => `{key:${ident()},secret:!0,auth:void 0}`,
    ])(),
  );
  addBenign('minified-js', `!function(){"use strict";${parts.join('')}}();`);
}
const pkgs = ['react', 'lodash', 'express', 'jsonwebtoken', 'keygrip', 'passport', 'oauth', 'tokenizer', 'secretlint'];
for (let i = 0; i < 45; i++) {
  const entries = Array.from({ length: 3 + int(8) }, () => ({
    name: pick(pkgs),
    version: `${int(10)}.${int(20)}.${int(10)}`,
    integrity: `sha512-${b64(bytes(64))}`,
  }));
  addBenign(
    'lock-file',
    pick([
      () =>
        JSON.stringify(
          {
            name: 'app',
            lockfileVersion: 3,
            packages: Object.fromEntries(
              entries.map((e) => [
                `node_modules/${e.name}`,
                {
                  version: e.version,
                  resolved: `https://registry.npmjs.org/${e.name}/-/${e.name}-${e.version}.tgz`,
                  integrity: e.integrity,
                },
              ]),
            ),
          },
          null,
          2,
        ),
      () =>
        entries
          .map(
            (e) =>
              `"${e.name}@^${e.version}":\n  version "${e.version}"\n` +
              `  resolved "https://registry.yarnpkg.com/${e.name}/-/${e.name}-${e.version}.tgz#${str(40, HEX)}"\n` +
              `  integrity ${e.integrity}\n`,
          )
          .join('\n'),
      () =>
        `lockfileVersion: '9.0'\n\npackages:\n\n${entries
          .map(
            (e) =>
              `  ${e.name}@${e.version}:\n    resolution: {integrity: ${e.integrity}}\n    engines: {node: '>=18'}\n`,
          )
          .join('\n')}`,
      () =>
        entries
          .map((e) => `${e.name} ${e.version} h1:${b64(bytes(32))}\n${e.name} ${e.version}/go.mod h1:${b64(bytes(32))}`)
          .join('\n'),
    ])(),
  );
}
// Near misses: placeholders, documentation examples, and the known secrets altered (one character
// changed, truncated, or only their start): none is a secret and none may be reported.
for (let i = 0; i < 30; i++) {
  addBenign(
    'placeholder',
    pick([
      () => `GITHUB_TOKEN=ghp_${'x'.repeat(36)}`,
      () => 'api_key: "your_api_key_here"',
      () => 'password = "changeme"',
      () => 'AWS_SECRET_ACCESS_KEY=<your-secret-access-key>',
      () => `token: "\${{ secrets.GITHUB_TOKEN }}"`,
      () => 'Authorization: Bearer <token>',
      () => `export SLACK_BOT_TOKEN=xoxb-${'0'.repeat(12)}-${'0'.repeat(13)}-${'X'.repeat(24)}`,
      () => '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----',
    ])(),
  );
}
for (const k of known) {
  if (k.binary) continue;
  const v = k.value;
  const at = int(v.length);
  // The scanner ignores case (see the fold), so the replacement differs from v[at] in any case.
  const swapped = v.slice(0, at) + (v[at].toLowerCase() === 'q' ? 'R' : 'Q') + v.slice(at + 1);
  addBenign('near-miss', `the old value was ${swapped} (retired)`);
  addBenign('near-miss', `truncated: ${v.slice(0, v.length - 1)}`);
}

// --- write -----------------------------------------------------------------------------------------

mkdirSync(out, { recursive: true });
const jsonl = (rows) => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;
writeFileSync(
  join(out, 'known-secrets.jsonl'),
  jsonl(known.map((k) => ({ name: k.name, version: k.version, [k.binary ? 'base64' : 'value']: k.value }))),
);
writeFileSync(join(out, 'secrets.jsonl'), jsonl(secrets));
writeFileSync(join(out, 'benign.jsonl'), jsonl(benign));
console.log(`${known.length} known secrets, ${secrets.length} secret texts, ${benign.length} benign texts in ${out}`);
