import { normalizeAddress, parseAllowedEntry, PeerAdmission, PeerAdmissionOptions, REFRESH_ON_REFUSAL_GAP_MS, REFUSAL_LOG_EVERY_MS } from './peer-admission';

/** A resolver answering from a table the test edits, counting its calls. */
function fakeDns(table: Record<string, string[]>) {
  const calls: string[] = [];
  const lookup = async (host: string) => {
    calls.push(host);
    const addresses = table[host];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return addresses;
  };
  return { table, calls, lookup };
}

function admission(options: Partial<PeerAdmissionOptions> & { members: string[] }) {
  let now = 1_000_000;
  const warnings: string[] = [];
  const a = new PeerAdmission({ now: () => now, warn: (m) => warnings.push(m), ...options });
  return { a, warnings, advance: (ms: number) => (now += ms) };
}

describe('normalizeAddress', () => {
  it.each([
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['::FFFF:127.0.0.1', '127.0.0.1'],
    ['127.0.0.1', '127.0.0.1'],
    ['FD00::1', 'fd00::1'],
    ['::1', '::1'],
  ])('%s -> %s', (raw, normalized) => expect(normalizeAddress(raw)).toBe(normalized));
});

describe('parseAllowedEntry', () => {
  it.each([
    ['10.0.0.5', { address: '10.0.0.5', family: 'ipv4' }],
    ['10.1.0.0/16', { address: '10.1.0.0', prefix: 16, family: 'ipv4' }],
    ['fd00::/8', { address: 'fd00::', prefix: 8, family: 'ipv6' }],
  ])('%s', (entry, parsed) => expect(parseAllowedEntry(entry)).toEqual(parsed));

  it.each(['node2', '10.0.0.0/33', '::/129', '10.0.0.0/x', '10.0.0.0/8/8', ''])('refuses %j', (entry) => {
    expect(parseAllowedEntry(entry)).toBeUndefined();
  });
});

describe('PeerAdmission', () => {
  it('admits the addresses of members named by IP literal and by localhost (both loopbacks), and nothing else', async () => {
    const { a } = admission({ members: ['http://127.0.0.1:3001', 'http://localhost:3002', 'http://[fd00::7]:3003'], lookup: fakeDns({}).lookup });
    await a.start();
    a.stop();
    expect(a.addresses()).toEqual(['127.0.0.1', '::1', 'fd00::7']);
    for (const ok of ['127.0.0.1', '::ffff:127.0.0.1', '::1', 'FD00::7']) expect(await a.check(ok)).toBeUndefined();
    for (const stranger of ['127.0.0.2', '::ffff:127.0.0.2', '10.0.0.1', 'fd00::8', undefined]) {
      expect(await a.check(stranger)).toMatchObject({ status: 403 });
    }
  });

  it('resolves member names to every address of both families', async () => {
    const dns = fakeDns({ node2: ['10.0.0.2', 'fd00::2'], node3: ['::ffff:10.0.0.3'] });
    const { a } = admission({ members: ['http://node1:3001', 'http://node2:3002', 'http://node3:3003'], lookup: dns.lookup });
    await a.start();
    a.stop();
    expect(a.addresses()).toEqual(['10.0.0.2', '10.0.0.3', 'fd00::2']);
    expect(dns.calls.sort()).toEqual(['node1', 'node2', 'node3']);
  });

  it("follows a member's new address: an unknown source triggers a re-resolution, at most every few seconds", async () => {
    const dns = fakeDns({ node2: ['10.0.0.2'] });
    const { a, advance } = admission({ members: ['http://node2:3002'], lookup: dns.lookup });
    await a.start();
    a.stop();
    dns.table.node2 = ['10.0.0.9']; // the container restarted with another address
    advance(REFRESH_ON_REFUSAL_GAP_MS);
    expect(await a.check('10.0.0.9')).toBeUndefined();
    expect(await a.check('10.0.0.2')).toMatchObject({ status: 403 });
    const calls = dns.calls.length;
    // Strangers in quick succession cost no further lookup...
    for (const stranger of ['10.6.6.1', '10.6.6.2', '10.6.6.3']) expect(await a.check(stranger)).toMatchObject({ status: 403 });
    expect(dns.calls.length).toBe(calls);
    // ...until the gap has passed.
    advance(REFRESH_ON_REFUSAL_GAP_MS);
    await a.check('10.6.6.4');
    expect(dns.calls.length).toBe(calls + 1);
  });

  it('re-resolves periodically on its own', async () => {
    jest.useFakeTimers();
    try {
      const dns = fakeDns({ node2: ['10.0.0.2'] });
      const { a } = admission({ members: ['http://node2:3002'], lookup: dns.lookup, refreshEveryMs: 30_000 });
      await a.start();
      dns.table.node2 = ['10.0.0.9'];
      await jest.advanceTimersByTimeAsync(30_000);
      expect(a.isAllowed('10.0.0.9')).toBe(true);
      expect(a.isAllowed('10.0.0.2')).toBe(false);
      a.stop();
      dns.table.node2 = ['10.0.0.10'];
      await jest.advanceTimersByTimeAsync(60_000);
      expect(a.isAllowed('10.0.0.10')).toBe(false);
    } finally {
      jest.useRealTimers();
    }
  });

  it('keeps the last addresses of a name that stops resolving, and admits a name once it resolves', async () => {
    const dns = fakeDns({ node2: ['10.0.0.2'] });
    const { a, warnings, advance } = admission({ members: ['http://node2:3002', 'http://node3:3003'], lookup: dns.lookup });
    await a.start();
    a.stop();
    expect(warnings).toEqual([expect.stringContaining('cannot resolve member host node3')]);
    delete dns.table.node2;
    dns.table.node3 = ['10.0.0.3'];
    advance(REFRESH_ON_REFUSAL_GAP_MS);
    expect(await a.check('10.0.0.3')).toBeUndefined();
    expect(a.isAllowed('10.0.0.2')).toBe(true);
    expect(warnings[1]).toMatch(/cannot resolve member host node2 .*keeping its last addresses 10\.0\.0\.2/);
  });

  it('logs a refusal once per source address per minute, with the address and what the sender claimed', async () => {
    const { a, warnings, advance } = admission({ members: ['http://127.0.0.1:3001'] });
    await a.start();
    a.stop();
    const claim = { nodeId: 'node1' };
    await a.check('127.0.0.2', claim);
    await a.check('::ffff:127.0.0.2', claim);
    await a.check('127.0.0.3', { nodeId: 'x"\nfake line' });
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toBe(
      'refused a peer stream from 127.0.0.2: not a member\'s address (claimed NODE_ID "node1"); ' +
        "members' addresses: 127.0.0.1 (logged once a minute per address)",
    );
    // What a stranger sends cannot start a log line of its own.
    expect(warnings[1]).toContain('claimed NODE_ID "x\\"\\nfake line")');
    expect(warnings[1]).not.toContain('\n');
    advance(REFUSAL_LOG_EVERY_MS - 1);
    await a.check('127.0.0.2', claim);
    expect(warnings).toHaveLength(2);
    advance(1);
    await a.check('127.0.0.2', claim);
    expect(warnings).toHaveLength(3);
  });

  describe('setMembers: the members follow the configuration', () => {
    it("admits a new member's literal address at once, and its name once resolved; a former member's no longer", async () => {
      const dns = fakeDns({ node4: ['10.0.0.4'] });
      const { a } = admission({ members: ['http://127.0.0.1:3001', 'http://10.0.0.2:3002'], lookup: dns.lookup });
      await a.start();
      a.stop();
      const resolved = a.setMembers(['http://127.0.0.1:3001', 'http://10.0.0.3:3003', 'http://node4:3004']);
      expect(a.isAllowed('10.0.0.3')).toBe(true);
      expect(a.isAllowed('10.0.0.2')).toBe(false);
      await resolved;
      expect(a.addresses()).toEqual(['10.0.0.3', '10.0.0.4', '127.0.0.1']);
    });

    it('a check during the resolution waits for it', async () => {
      let answer: (addresses: string[]) => void = () => undefined;
      const lookup = () => new Promise<string[]>((resolve) => (answer = resolve));
      const { a } = admission({ members: ['http://127.0.0.1:3001'], lookup });
      await a.start();
      a.stop();
      void a.setMembers(['http://127.0.0.1:3001', 'http://node5:3005']);
      const decision = a.check('10.0.0.5');
      await new Promise((resolve) => setImmediate(resolve));
      answer(['10.0.0.5']);
      expect(await decision).toBeUndefined();
    });

    it('a resolution that started before a member was removed does not admit it again', async () => {
      const pending: Array<(addresses: string[]) => void> = [];
      const lookup = () => new Promise<string[]>((resolve) => pending.push(resolve));
      const { a } = admission({ members: ['http://node2:3002'], lookup });
      const started = a.start();
      await new Promise((resolve) => setImmediate(resolve));
      const changed = a.setMembers(['http://127.0.0.1:3001']);
      pending[0](['10.0.0.2']);
      await started;
      await changed;
      a.stop();
      expect(a.addresses()).toEqual(['127.0.0.1']);
    });

    it('the same hosts again change nothing and resolve nothing', async () => {
      const dns = fakeDns({ node2: ['10.0.0.2'] });
      const { a } = admission({ members: ['http://node2:3002'], lookup: dns.lookup });
      await a.start();
      a.stop();
      await a.setMembers(['http://node2:4002']);
      expect(dns.calls).toEqual(['node2']);
    });
  });

  it('PEER_ALLOWED_ADDRESSES admits extra addresses and ranges of both families', async () => {
    const { a } = admission({ members: ['http://127.0.0.1:3001'], allowedAddresses: ['10.1.0.0/16', '192.0.2.7', 'fd00::/8'] });
    await a.start();
    a.stop();
    for (const ok of ['10.1.200.3', '::ffff:10.1.0.1', '192.0.2.7', 'fd12::1', '127.0.0.1']) expect(a.isAllowed(ok)).toBe(true);
    for (const no of ['10.2.0.1', '192.0.2.8', 'fe80::1']) expect(a.isAllowed(no)).toBe(false);
  });

  it('PEER_ALLOW_ANY admits every address and resolves nothing', async () => {
    const dns = fakeDns({});
    const { a } = admission({ members: ['http://node2:3002'], allowAny: true, lookup: dns.lookup });
    await a.start();
    expect(await a.check('203.0.113.9')).toBeUndefined();
    expect(dns.calls).toEqual([]);
  });

  it('refuses to be built with an entry that is not an address or a range', () => {
    expect(() => new PeerAdmission({ members: [], allowedAddresses: ['node2'] })).toThrow("not an IP address or CIDR range: 'node2'");
  });
});
