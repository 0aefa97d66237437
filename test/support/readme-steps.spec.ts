import { canonicalNodeOrder, commandsOf, compareJson, matchText, outputLines, parseExpectedJson, readmeSteps, Roles } from './readme-steps';

const FENCE = '```';
const doc = [
  '## Quick start',
  `${FENCE}bash`,
  'npm install',
  FENCE,
  '<!-- skip: set-up -->',
  '## Walkthroughs',
  '### One',
  `${FENCE}bash`,
  'curl -X PUT http://localhost:3001/kv/k \\',
  '  -d x   # the body',
  '# a comment',
  'curl http://localhost:3002/status',
  FENCE,
  '<!-- expect: json leader -->',
  `${FENCE}json`,
  '{"leader":"node1",...}',
  FENCE,
  `${FENCE}bash`,
  'docker-compose stop node1',
  FENCE,
  '## Other',
  `${FENCE}bash`,
  'not checked',
  FENCE,
].join('\n');

describe('readmeSteps', () => {
  it('reads steps, their expected outputs, skip markers and Docker twins from the checked sections only', () => {
    const steps = readmeSteps(doc, ['Quick start', 'Walkthroughs']);
    expect(steps.map((s) => [s.kind, s.fence.section, s.fence.subsection, s.commands])).toEqual([
      ['skip', 'Quick start', undefined, ['npm install']],
      ['run', 'Walkthroughs', 'One', ['curl -X PUT http://localhost:3001/kv/k -d x   # the body', 'curl http://localhost:3002/status']],
      ['docker', 'Walkthroughs', 'One', ['docker-compose stop node1']],
    ]);
    expect(steps[0].skipReason).toBe('set-up');
    expect(steps[1].expect).toEqual({ kind: 'json', leader: true, text: '{"leader":"node1",...}', line: 15 });
  });

  it('refuses markup it does not understand', () => {
    expect(() => readmeSteps('## A\n<!-- expect: json -->\n```json\n{}\n```', ['A'])).toThrow(/must directly follow/);
    expect(() => readmeSteps('## A\n```bash\nx\n```\n<!-- expect: yaml -->\n```\ny\n```', ['A'])).toThrow(/expect: json/);
    expect(() => readmeSteps('## A\n```bash\nx\n```\n<!-- frobnicate -->', ['A'])).toThrow(/unknown marker/);
  });

  it('joins continuation lines and drops comment lines', () => {
    expect(commandsOf('# c\na \\\n  b\n\nc')).toEqual(['a b', 'c']);
  });
});

describe('Roles', () => {
  it('rewrites node names and localhost ports by role, and swaps roles as the README asks', () => {
    const roles = new Roles(3, 40001);
    expect(roles.rewrite('node1 http://localhost:3003 node10')).toBe('node1 http://localhost:40003 node10');
    roles.assign(1, 2); // node2 leads where the README assumed node1
    expect(roles.rewrite('stop node1; curl localhost:3001; ask node2 at localhost:3002')).toBe(
      'stop node2; curl localhost:40002; ask node1 at localhost:40001',
    );
    expect(roles.toString()).toBe('node1→node2 node2→node1 node3→node3');
  });
});

describe('output comparison', () => {
  it('compares JSON with varying values by type, and "..." objects as open', () => {
    expect(compareJson(parseExpectedJson('{"term":1,"leader":"node1",...}'), { term: 7, leader: 'node1', extra: true })).toEqual([]);
    expect(compareJson(parseExpectedJson('{"term":1}'), { term: '7' })).toEqual(['$.term: expected a number, got "7"']);
    // A key's indexes depend on how many writes the README made before: compared by type, like `index`.
    expect(compareJson(parseExpectedJson('{"key":"k","value":"v","createIndex":2,"modIndex":3}'), { key: 'k', value: 'v', createIndex: 9, modIndex: 12 })).toEqual([]);
    expect(compareJson(parseExpectedJson('{"modIndex":3}'), { modIndex: null })).toEqual(['$.modIndex: expected a number, got null']);
    expect(compareJson(parseExpectedJson('{"a":1}'), { a: 1, b: 2 })).toEqual(['$.b: not in the README\'s output']);
    expect(compareJson(parseExpectedJson('{"state":"LEADER","leader":"node1"}'), { state: 'FOLLOWER', leader: 'node1' }, { relaxed: new Set(['state']) })).toEqual([]);
  });

  it('matches text line by line, "..." standing for any lines', () => {
    expect(matchText(['HTTP/1.1 503 Service Unavailable', '...', '{}'], ['HTTP/1.1 503 Service Unavailable', 'a: b', 'c: d', '{}'])).toBe(true);
    expect(matchText(['a', '...'], ['a'])).toBe(true);
    expect(matchText(['a', 'b'], ['a', 'c'])).toBe(false);
  });

  it("drops npm's banner and blank lines, and orders lists of nodes by name", () => {
    expect(outputLines('\n> raft-kv@0.1.0 cluster\n> node x\n\nStopping node1 ... done\r\n')).toEqual(['Stopping node1 ... done']);
    expect(canonicalNodeOrder(['x', 'Restarting node2 ... done', 'Restarting node1 ... done', 'y'])).toEqual([
      'x',
      'Restarting node1 ... done',
      'Restarting node2 ... done',
      'y',
    ]);
  });
});
