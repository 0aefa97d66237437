import { BadRequestException, Inject, Injectable, ServiceUnavailableException } from '@nestjs/common';
import { AddMemberDto, baseUrl, MembersDto, PromoteAnswerDto, RemoveAnswerDto } from './members.dto';
import {
  AddMemberAnswer,
  CLUSTER_BOOTSTRAP,
  ClusterBootstrap,
  ClusterIdentity,
  MemberInfo,
  MembershipNode,
  MembersView,
  RaftNode,
} from './membership-node';

/**
 * `http://<address>:<port>`: the URL of a node that asked to join without giving one, from the address its
 * request came from. An IPv4 address seen on a dual-stack socket (`::ffff:10.0.0.4`) is written as IPv4; an
 * IPv6 one in brackets.
 */
export function urlFromAddress(address: string, port: number): string {
  const plain = address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
  return `http://${plain.includes(':') ? `[${plain}]` : plain}:${port}`;
}

/**
 * The membership routes' logic: reads the configuration this node applied, and asks the leader's Raft node
 * for changes (RaftNode.changeMembership rejects on a follower with NotLeaderError, which the route answers
 * with a 307 to the leader). A change is answered once committed and applied on the leader.
 */
@Injectable()
export class ClusterMembersService {
  constructor(
    @Inject(RaftNode) private readonly raft: MembershipNode,
    @Inject(CLUSTER_BOOTSTRAP) private readonly bootstrap: Pick<ClusterBootstrap, 'identity'>,
  ) {}

  list(): MembersDto {
    const { leader, members } = this.raft.members();
    return { clusterId: this.identity().clusterId, leader, members };
  }

  /**
   * Adds a member (a learner unless `learner: false`). `created` is false when the leader already has it as
   * asked (same URL; a voter, or a learner when a learner was asked): a joining node whose first answer was
   * lost asks again and is answered as the first time, with an index applied since.
   */
  async add(request: AddMemberDto, remoteAddress: string | undefined): Promise<{ created: boolean; answer: AddMemberAnswer }> {
    const { clusterId, initialVoters } = this.identity();
    const learner = request.learner ?? true;
    const url = this.urlOf(request, remoteAddress);
    const existing = this.leaderView()?.members.find((m) => m.nodeId === request.nodeId);
    if (existing && existing.url === url && (existing.role === 'voter' || learner)) {
      const { members } = this.raft.members();
      return { created: false, answer: { clusterId, index: this.raft.applied, initialVoters, member: existing, members } };
    }
    const { index } = await this.raft.changeMembership({ op: 'add', nodeId: request.nodeId, url, learner });
    const { members } = this.raft.members();
    const member = members.find((m) => m.nodeId === request.nodeId) ?? { nodeId: request.nodeId, url, role: learner ? 'learner' : 'voter', self: false };
    return { created: true, answer: { clusterId, index, initialVoters, member, members } };
  }

  /** Learner to voter; a member that is a voter already is answered as if just promoted (a retry). */
  async promote(nodeId: string): Promise<PromoteAnswerDto> {
    const existing = this.leaderView()?.members.find((m) => m.nodeId === nodeId);
    const index = existing?.role === 'voter' ? this.raft.applied : (await this.raft.changeMembership({ op: 'promote', nodeId })).index;
    const { members } = this.raft.members();
    const member = members.find((m) => m.nodeId === nodeId) ?? existing ?? { nodeId, role: 'voter', self: false };
    return { index, member, members };
  }

  async remove(nodeId: string): Promise<RemoveAnswerDto> {
    const { index } = await this.raft.changeMembership({ op: 'remove', nodeId });
    return { index, members: this.raft.members().members };
  }

  /** The configuration, when this node leads (only the leader's view can settle whether a retry is one). */
  private leaderView(): MembersView | undefined {
    const view = this.raft.members();
    const self = view.members.find((m: MemberInfo) => m.self);
    return self && view.leader === self.nodeId ? view : undefined;
  }

  private urlOf(request: AddMemberDto, remoteAddress: string | undefined): string {
    if (request.url !== undefined) return baseUrl(request.url)!;
    if (!remoteAddress) throw new BadRequestException({ error: "url is required: the request's address is not known" });
    return urlFromAddress(remoteAddress, request.port!);
  }

  private identity(): ClusterIdentity {
    const identity = this.bootstrap.identity;
    // The node serves only once its identity is resolved; this is for a request racing the start.
    if (!identity) throw new ServiceUnavailableException({ error: 'The cluster identity is not known yet; retry shortly' });
    return identity;
  }
}
