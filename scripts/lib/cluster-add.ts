/**
 * `npm run cluster -- add [nodeN]`: which node to start next to a running local cluster, where, and with
 * what environment. Plain functions; scripts/cluster.ts runs the process.
 */
import { join } from 'node:path';
import { UsageError } from './cli';
import { Member } from './node-process';

const NODE_NAME = /^node([1-9]\d*)$/;

/** What the running cluster's supervisor tells `add` (its control command `info`). */
export interface ClusterInfo {
  basePort: number;
  /** Host name in the nodes' URLs, and the address they bind. */
  host: string;
  bindHost: string;
  /** The nodes' CLUSTER_TOKEN: a new member must hold the same one. */
  token: string;
  nodes: Array<{ name: string; url: string; running: boolean }>;
}

/** The node `add` was asked for: `nodeN`, or undefined for the next free one. */
export function addTarget(names: readonly string[]): string | undefined {
  if (names.length > 1) throw new UsageError(`'add' starts one node at a time (got ${names.join(', ')})`);
  const [name] = names;
  if (name !== undefined && !NODE_NAME.test(name)) {
    throw new UsageError(`'add' takes a node name of the form nodeN, whose port is the cluster's base port + N - 1 (got '${name}')`);
  }
  return name;
}

/** node<N+1>, N the highest number among `taken` (the cluster's nodes and the data directories beside them). */
export function nextNodeName(taken: Iterable<string>): string {
  let highest = 0;
  for (const name of taken) {
    const n = NODE_NAME.exec(name);
    if (n) highest = Math.max(highest, Number(n[1]));
  }
  return `node${highest + 1}`;
}

/** nodeN as the cluster lays its nodes out: port base + N - 1, data in DIR/nodeN. */
export function addedMember(name: string, info: Pick<ClusterInfo, 'basePort' | 'host' | 'bindHost'>, dataDir: string): Member {
  const n = Number(NODE_NAME.exec(name)?.[1]);
  const port = info.basePort + n - 1;
  if (!Number.isInteger(port) || port > 65535) throw new UsageError(`${name} would listen on port ${port}, which does not exist`);
  return { name, port, url: `http://${info.host}:${port}`, dir: join(dataDir, name), bindHost: info.bindHost };
}

/** The member to JOIN through: the first of the cluster's nodes that runs and answers `answers(url)`. */
export async function joinThrough(info: Pick<ClusterInfo, 'nodes'>, answers: (url: string) => Promise<boolean>): Promise<string | undefined> {
  for (const node of info.nodes.filter((n) => n.running)) {
    if (await answers(node.url)) return node.url;
  }
  return undefined;
}
