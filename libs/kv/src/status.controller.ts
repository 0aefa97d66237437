import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RaftNodeService, StateType } from '@app/consensus';
import { StatusDto } from './dto/kv-responses.dto';
import { KV_OPTIONS, KvOptions } from './kv.service';
import { KvStateMachine } from './kv-state-machine';

const STATE_NAMES: Record<StateType, string> = {
  [StateType.Leader]: 'LEADER',
  [StateType.Follower]: 'FOLLOWER',
  [StateType.Candidate]: 'CANDIDATE',
  [StateType.PreCandidate]: 'PRE_CANDIDATE',
};

@ApiTags('status')
@Controller('status')
export class StatusController {
  constructor(
    private readonly raft: RaftNodeService,
    private readonly stateMachine: KvStateMachine,
    @Inject(KV_OPTIONS) private readonly options: KvOptions,
  ) {}

  @Get()
  @ApiOperation({
    summary:
      "This node's view of the cluster: role, term, leader, log and snapshot indexes, the data size and its quota, and (on the leader) each peer",
  })
  @ApiOkResponse({ type: StatusDto })
  status(): StatusDto {
    const s = this.raft.status();
    // A member is its NODE_ID; the URLs are where this node reaches each one. With PEER_PORT, a member has two:
    // url and peerUrl where peers reach it, clientUrl where clients do (absent fields without PEER_PORT).
    const known = new Map(this.raft.members().members.map((m) => [m.nodeId, m]));
    const urls = new Map([...known].map(([id, m]) => [id, m.url ?? null]));
    const twoUrls = (id: string) => {
      const m = known.get(id);
      return m?.peerUrl === undefined ? {} : { clientUrl: m.clientUrl ?? null, peerUrl: m.peerUrl };
    };
    const clientUrlOf = (id: string) => {
      const m = known.get(id);
      return (m?.peerUrl === undefined ? m?.url : m.clientUrl) ?? null;
    };
    const isLeader = s.state === StateType.Leader;
    const status: StatusDto = {
      state: STATE_NAMES[s.state],
      term: s.term,
      leader: s.lead ? (s.leaderName ?? null) : null,
      isLeader,
      nodeId: s.name,
      url: urls.get(s.id) ?? null,
      ...twoUrls(s.id),
      // Where a client goes to reach the leader: its client URL.
      leaderUrl: s.lead ? clientUrlOf(s.lead) : null,
      commitIndex: s.commit,
      appliedIndex: s.applied,
      lastLogIndex: s.lastIndex,
      snapshotIndex: s.snapshotIndex,
      firstLogIndex: s.firstLogIndex,
      dataBytes: this.stateMachine.dataBytes,
    };
    if (this.options.maxDataBytes !== undefined) status.quotaBytes = this.options.maxDataBytes;
    if (isLeader) {
      status.peers = s.peers.map((p) => ({
        nodeId: p.name,
        url: urls.get(p.id) ?? null,
        ...twoUrls(p.id),
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
