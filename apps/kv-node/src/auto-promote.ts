import { HttpService } from '@nestjs/axios';
import { Logger } from '@nestjs/common';
import { promoteWhenCaughtUp } from '@app/cluster-rpc';
import { RaftNodeService } from '@app/consensus';
import { NodeConfig } from '@app/config';

/**
 * A node started with JOIN is added as a learner; unless JOIN_AS_LEARNER=true, it then asks the leader to
 * promote it to voter until the leader agrees (once it has caught up) or it is a voter. Runs in the
 * background, through @nestjs/axios (a per-request admin call, off the replication path); `signal` stops it.
 */
export function promoteAfterJoin(raft: RaftNodeService, http: HttpService, config: NodeConfig, signal: AbortSignal): void {
  if (!config.join || config.joinAsLearner) return;
  const join = config.join;
  const self = () => raft.members().members.find((m) => m.self);
  if (self()?.role === 'voter') return;
  const logger = new Logger('Join');
  const urls = () => {
    // The admin API is on the client port: a member's client URL where it has one apart (PEER_PORT).
    const known = raft
      .members()
      .members.filter((m) => !m.self && (m.clientUrl ?? m.url) !== undefined)
      .map((m) => (m.clientUrl ?? m.url) as string);
    return known.length > 0 ? known : [join];
  };
  promoteWhenCaughtUp(http, urls, config.nodeId, {
    token: config.clusterToken,
    isVoter: () => self()?.role === 'voter',
    log: (line) => logger.log(line),
    signal,
  }).catch((error: Error) => logger.warn(`${config.nodeId} stays a learner: ${error.message}`));
}
