// What completion offers is decided from the text before the cursor, which usually does not parse.
import t from 'tap';
import { completionContext } from '../src/completion.js';

t.test('resource attributes are typed by the actions of the rule the cursor is in', async (t) => {
  t.same(completionContext('policy "p" {\n  allow fs.read, fs.write when resource.'), {
    kind: 'resource',
    actions: ['fs.read', 'fs.write'],
  });
  t.same(completionContext('  deny net.* when resource.host == "a" and resource.po'), {
    kind: 'resource',
    actions: ['net.*'],
  });
  t.same(completionContext('  allow net.http when x\n  allow fs.read when resource.'), {
    kind: 'resource',
    actions: ['fs.read'],
  });
});

t.test('actions, roles, principal and context attributes', async (t) => {
  t.same(completionContext('policy "p" {\n  allow '), { kind: 'action' });
  t.same(completionContext('  ask net.connect, net.'), { kind: 'action' });
  t.same(completionContext('role lead extends developer, '), { kind: 'role' });
  t.same(completionContext('  allow x when principal.'), { kind: 'principal' });
  t.same(completionContext('  allow x when context.pro'), { kind: 'context' });
});

t.test('outside a rule, and after a rule has ended', async (t) => {
  t.same(completionContext(''), { kind: 'other', inRule: false });
  t.same(completionContext('  allow fs.read when resource.path == "/a"\n}\n'), { kind: 'other', inRule: false });
  t.same(completionContext('  allow fs.read when resource.path in '), { kind: 'other', inRule: true });
});
