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
    // A member is its NODE_ID; the URLs are where this node reaches each one.
    const urls = new Map(this.raft.members().members.map((m) => [m.nodeId, m.url ?? null]));
    const isLeader = s.state === StateType.Leader;
    const status: StatusDto = {
      state: STATE_NAMES[s.state],
      term: s.term,
      leader: s.lead ? (s.leaderName ?? null) : null,
      isLeader,
      nodeId: s.name,
      url: urls.get(s.id) ?? null,
      leaderUrl: s.lead ? (urls.get(s.lead) ?? null) : null,
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
        matchIndex: p.match,
        nextIndex: p.next,
        replication: p.state,
        lastContactMs: p.lastContactMs,
      }));
    }
    if (s.storageFull) {
      status.storage = 'full';
      status.storageError = s.storageFull.reason;
      status.storageFullForMs = s.storageFull.sinceMs;
    }
    return status;
  }
}
