import { DynamicModule, Module } from '@nestjs/common';
import {
  CLUSTER_BOOTSTRAP,
  ClusterBootstrap,
  ClusterIdentity,
  MemberInfo,
  MembershipChange,
  MembershipNode,
  MembersView,
  RaftNode,
} from '../membership-node';

/**
 * A RaftNode as the admin API sees it: a configuration the test sets (`view`), and changeMembership answered
 * by `onChange` (default: applies the change to `view` and resolves with the next index). Every change asked
 * is recorded in `changes`.
 */
export class FakeMembershipNode implements MembershipNode {
  view: MembersView;
  applied = 100;
  readonly changes: MembershipChange[] = [];
  onChange: (change: MembershipChange) => Promise<{ index: number }> = (change) => Promise.resolve(this.apply(change));

  constructor(members: MemberInfo[], leader: string | null = members.find((m) => m.self)?.nodeId ?? null) {
    this.view = { leader, members };
  }

  changeMembership(change: MembershipChange): Promise<{ index: number }> {
    this.changes.push(change);
    return this.onChange(change);
  }

  members(): MembersView {
    return { leader: this.view.leader, members: this.view.members.map((m) => ({ ...m })) };
  }

  /** What the leader does once the change is committed and applied. */
  apply(change: MembershipChange): { index: number } {
    const others = this.view.members.filter((m) => m.nodeId !== change.nodeId);
    const current = this.view.members.find((m) => m.nodeId === change.nodeId);
    if (change.op === 'add') others.push({ nodeId: change.nodeId, url: change.url, role: change.learner ? 'learner' : 'voter', self: false });
    if (change.op === 'promote' && current) others.push({ ...current, role: 'voter' });
    this.view = { ...this.view, members: others };
    return { index: ++this.applied };
  }
}

/** Three voters at http://localhost:3001..3003; `self` is the node answering. */
export function threeVoters(self = 'node1'): MemberInfo[] {
  return [1, 2, 3].map((i) => ({ nodeId: `node${i}`, url: `http://localhost:300${i}`, role: 'voter', self: `node${i}` === self }));
}

export const IDENTITY: ClusterIdentity = {
  clusterId: 'c0ffee',
  nodeId: 'node1',
  initialVoters: ['node1', 'node2', 'node3'],
  addresses: { node1: 'http://localhost:3001', node2: 'http://localhost:3002', node3: 'http://localhost:3003' },
};

@Module({})
class FakeConsensusModule {}

/** What ClusterAdminModule is given as `consensus`: exports RaftNode, bound to `node`. */
export function fakeConsensus(node: MembershipNode): DynamicModule {
  return { module: FakeConsensusModule, providers: [{ provide: RaftNode, useValue: node }], exports: [RaftNode] };
}

@Module({})
class FakeBootstrapModule {}

/** A module exporting CLUSTER_BOOTSTRAP with `identity` resolved. */
export function fakeBootstrap(identity: ClusterIdentity | undefined = IDENTITY): DynamicModule {
  const bootstrap: ClusterBootstrap = { identity, resolve: () => Promise.resolve(identity!) };
  return { module: FakeBootstrapModule, providers: [{ provide: CLUSTER_BOOTSTRAP, useValue: bootstrap }], exports: [CLUSTER_BOOTSTRAP] };
}
