import { parseYaml } from './yaml';

describe('parseYaml', () => {
  it('reads the shapes the Compose and Prometheus files use: maps, lists, quoted and bare scalars', () => {
    const text = [
      'services:',
      '  node1:',
      '    environment:',
      '      HTTP_PORT: "3001"',
      '    ports:',
      '      - published: "3001"',
      '        target: 3001',
      '    command: ["--config.file=/etc/prometheus/prometheus.yml"]',
      'volumes:',
      '  raft-kv-node1-data: {}',
    ].join('\n');
    expect(parseYaml(text)).toEqual({
      services: {
        node1: {
          environment: { HTTP_PORT: '3001' },
          ports: [{ published: '3001', target: 3001 }],
          command: ['--config.file=/etc/prometheus/prometheus.yml'],
        },
      },
      volumes: { 'raft-kv-node1-data': {} },
    });
  });

  it('resolves merge keys as docker-compose does: the local keys win over the merged ones', () => {
    const text = ['x-node: &node', '  image: raft-kv:local', '  stop_grace_period: 20s', 'node1:', '  <<: *node', '  image: mine'].join('\n');
    expect(parseYaml(text)).toEqual({
      'x-node': { image: 'raft-kv:local', stop_grace_period: '20s' },
      node1: { image: 'mine', stop_grace_period: '20s' },
    });
  });

  it('refuses a duplicated key instead of keeping one of the two values', () => {
    expect(() => parseYaml('a: 1\na: 2\n')).toThrow(/unique/i);
  });

  it('refuses broken syntax', () => {
    expect(() => parseYaml('a: [1, 2\n')).toThrow();
  });
});
