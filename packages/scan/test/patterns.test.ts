// Built-in pattern rules: each credential family is found with its rule, kind and exact span in a
// realistic line, and near misses (placeholders, public keys, the AWS documentation key's shape
// with low entropy, ordinary assignments) are not.
import t from 'tap';
import { createScanner } from '../src/index.js';

const scanner = createScanner();

const positives: [string, string, string, string][] = [
  ['aws', 'aws-access-key-id', 'AKIA4HKQ7ZRW2MBX5TJD', 'export AWS_ACCESS_KEY_ID=AKIA4HKQ7ZRW2MBX5TJD'],
  [
    'aws',
    'aws-secret-access-key',
    'q8Zk3vR+Tn2Lw9Yx/Bc4Hd7Jf1Gm5Ps6Ua0Ve3Wb',
    'aws_secret_access_key = q8Zk3vR+Tn2Lw9Yx/Bc4Hd7Jf1Gm5Ps6Ua0Ve3Wb',
  ],
  [
    'github',
    'github-token',
    'ghp_R4nd0mT0k3nV4lu3xYz9Qw8Er7Ty6Ui5Op4A',
    'Authorization: token ghp_R4nd0mT0k3nV4lu3xYz9Qw8Er7Ty6Ui5Op4A',
  ],
  [
    'gitlab',
    'gitlab-token',
    'glpat-Xy7bQ2mN9pLk4RtV1sWz',
    'git clone https://oauth2:glpat-Xy7bQ2mN9pLk4RtV1sWz@gitlab.com/a/b',
  ],
  [
    'slack',
    'slack-token',
    'xoxb-2211443355-9988776655443-Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7',
    'SLACK_BOT_TOKEN: "xoxb-2211443355-9988776655443-Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7"',
  ],
  [
    'jwt',
    'jwt',
    'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
    'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
  ],
  ['generic', 'generic-assignment', 'Zq8#vL2!pX9@mR4t', 'DB_PASSWORD="Zq8#vL2!pX9@mR4t"'],
];

t.test('each credential family is found with its kind, rule and exact span', async (t) => {
  for (const [kind, rule, secret, text] of positives) {
    const { findings, redacted } = scanner.scan(text);
    const f = findings.find((x) => x.kind === kind);
    t.ok(f, `${rule}: found in ${JSON.stringify(text)}`);
    t.equal(f?.rule, rule);
    t.equal(text.slice(f?.start, f?.end), secret, `${rule}: span`);
    t.notOk(String(redacted).includes(secret), `${rule}: redacted`);
  }
});

t.test('a private key block is found whole; a public key or certificate is not', async (t) => {
  const body = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nq3Jx0rL2kW9sV1bN8mZ4tY6uP0oQ5eR7iT3aH2dF\n';
  const key = `-----BEGIN PRIVATE KEY-----\n${body}-----END PRIVATE KEY-----`;
  const [f] = scanner.scan(`config:\n${key}\n`).findings;
  t.equal(f?.kind, 'private-key');
  t.equal(`config:\n${key}\n`.slice(f?.start, f?.end), key);
  t.same(scanner.scan(`-----BEGIN PUBLIC KEY-----\n${body}-----END PUBLIC KEY-----`).findings, []);
  t.same(scanner.scan(`-----BEGIN CERTIFICATE-----\n${body}-----END CERTIFICATE-----`).findings, []);
});

t.test('placeholders and ordinary assignments are not findings', async (t) => {
  for (const text of [
    'GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
    'password = os.environ["DB_PASSWORD"]',
    `token: \${{ secrets.GITHUB_TOKEN }}`,
    'api_key = "your_api_key_here"',
    'const tokenizer = new Tokenizer(options);',
    'commit 9fceb02d0ae598e95dc970b74767f19372d61af8',
    'id: 123e4567-e89b-12d3-a456-426614174000',
    'AKIAAAAAAAAAAAAAAAAA',
  ]) {
    t.same(scanner.scan(text).findings, [], text);
  }
});
