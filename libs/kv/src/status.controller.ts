import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RaftNodeService, StateType } from '@app/consensus';
import { StatusDto } from './dto/kv-responses.dto';

const STATE_NAMES: Record<StateType, string> = {
  [StateType.Leader]: 'LEADER',
  [StateType.Follower]: 'FOLLOWER',
  [StateType.Candidate]: 'CANDIDATE',
  [StateType.PreCandidate]: 'PRE_CANDIDATE',
};

@ApiTags('status')
@Controller('status')
export class StatusController {
  constructor(private readonly raft: RaftNodeService) {}

  @Get()
  @ApiOperation({ summary: "This node's view of the cluster: role, term, leader, log and snapshot indexes, and (on the leader) each peer" })
  @ApiOkResponse({ type: StatusDto })
  status(): StatusDto {
    const s = this.raft.status();
    // A member is its NODE_ID; the URLs are where this node reaches each one (url, peerUrl) and where clients
    // do (clientUrl: another port when it serves peers on a PEER_PORT).
    const known = new Map(this.raft.members().members.map((m) => [m.nodeId, m]));
    const urls = new Map([...known].map(([id, m]) => [id, m.url ?? null]));
    const clientUrl = (id: string) => known.get(id)?.clientUrl ?? null;
    const peerUrl = (id: string) => known.get(id)?.peerUrl ?? null;
    const isLeader = s.state === StateType.Leader;
    const status: StatusDto & { clientUrl?: string | null; peerUrl?: string | null } = {
      state: STATE_NAMES[s.state],
      term: s.term,
      leader: s.lead ? (s.leaderName ?? null) : null,
      isLeader,
      nodeId: s.name,
      url: urls.get(s.id) ?? null,
      clientUrl: clientUrl(s.id),
      peerUrl: peerUrl(s.id),
      // Where a client goes to reach the leader.
      leaderUrl: s.lead ? clientUrl(s.lead) : null,
      commitIndex: s.commit,
      appliedIndex: s.applied,
      lastLogIndex: s.lastIndex,
      snapshotIndex: s.snapshotIndex,
      firstLogIndex: s.firstLogIndex,
    };
    if (isLeader) {
      status.peers = s.peers.map((p) => ({
        nodeId: p.name,
        url: urls.get(p.id) ?? null,
        clientUrl: clientUrl(p.id),
        peerUrl: peerUrl(p.id),
        matchIndex: p.match,
        nextIndex: p.next,
        replication: p.state,
        lastContactMs: p.lastContactMs,
      }));
    }
    return status;
  }
}
