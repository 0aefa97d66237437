/**
 * .ci/install-packages: apt-get installs run with every service start forbidden (policy-rc.d exits 101),
 * and the policy is removed (or the machine's own put back) afterwards, whether the install worked or not.
 * apt-get is a stand-in on PATH that asks the policy, as Debian's invoke-rc.d does, and records the answer.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const SCRIPT = join(ROOT, '.ci/install-packages');
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ci-install-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the script with a fake apt-get whose `install` asks the policy and exits `installExit`. */
function run(packages: string[], installExit = 0) {
  const bin = join(dir, 'bin');
  const log = join(dir, 'apt.log');
  spawnSync('mkdir', ['-p', bin]);
  writeFileSync(
    join(bin, 'apt-get'),
    [
      '#!/bin/sh',
      `echo "apt-get $*" >> "${log}"`,
      'if [ "$1" = install ]; then',
      `  "$POLICY_RC_D" prometheus start; echo "policy prometheus start: $?" >> "${log}"`,
      `  exit ${installExit}`,
      'fi',
    ].join('\n'),
  );
  chmodSync(join(bin, 'apt-get'), 0o755);
  const policy = join(dir, 'policy-rc.d');
  const result = spawnSync('bash', [SCRIPT, ...packages], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, POLICY_RC_D: policy },
    encoding: 'utf8',
  });
  return { result, policy, log: existsSync(log) ? readFileSync(log, 'utf8') : '' };
}

describe('.ci/install-packages', () => {
  it('installs the packages with service starts forbidden, then removes the policy', () => {
    const { result, policy, log } = run(['prometheus', 'iptables']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(log.split('\n').filter(Boolean)).toEqual([
      'apt-get update -qq',
      'apt-get install -y -qq --no-install-recommends prometheus iptables',
      'policy prometheus start: 101',
    ]);
    expect(existsSync(policy)).toBe(false);
  });

  it("puts the machine's own policy-rc.d back as it was", () => {
    const policy = join(dir, 'policy-rc.d');
    writeFileSync(policy, '#!/bin/sh\n# the machine\'s own\nexit 0\n');
    chmodSync(policy, 0o750);
    const { result, log } = run(['prometheus']);
    expect(result.status).toBe(0);
    expect(log).toContain('policy prometheus start: 101');
    expect(readFileSync(policy, 'utf8')).toBe("#!/bin/sh\n# the machine's own\nexit 0\n");
    expect(statSync(policy).mode & 0o777).toBe(0o750);
  });

  it('removes the policy and fails when apt-get fails', () => {
    const { result, policy } = run(['no-such-package'], 100);
    expect(result.status).toBe(100);
    expect(existsSync(policy)).toBe(false);
  });
});

describe('.ci/run', () => {
  it('stops no process by name (it starts no service to stop)', () => {
    const script = readFileSync(join(ROOT, '.ci/run'), 'utf8');
    expect(script).not.toMatch(/\b(pkill|killall)\b/);
    expect(script).toContain('.ci/install-packages "${need[@]}"');
  });
});
