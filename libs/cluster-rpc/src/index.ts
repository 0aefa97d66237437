export { ClusterRpcModule } from './cluster-rpc.module';
export type { ClusterRpcModuleAsyncOptions } from './cluster-rpc.module';
export { HttpPeerTransport } from './http-peer-transport';
export type { SnapshotAnswer } from './http-peer-transport';
export { CLUSTER_RPC_OPTIONS } from './cluster-rpc.options';
export { ClientUrls } from './client-urls';
export type { ClusterRpcOptions } from './cluster-rpc.options';
export { ClusterBootstrapService, ClusterBootstrapError, JOIN_CLUSTER } from './cluster-bootstrap.service';
export type { JoinCluster } from './cluster-bootstrap.service';
export { DEFAULT_SNAPSHOT_STALL_TIMEOUT_MS } from './http-peer-transport';
export { encodeMessages, decodeMessages, MessageDecodeError } from './message-codec';
export { FrameDecoder, FrameError, FRAME_HEADER, PONG } from './frame';
export {
  MAX_SNAPSHOT_FRAME,
  PEER_HEADERS,
  PEER_HELLO_PATH,
  PEER_SNAPSHOT_CONTENT_TYPE,
  PEER_SNAPSHOT_PATH,
  PEER_STREAM_CONTENT_TYPE,
  PEER_STREAM_PATH,
  PONG_INTERVAL_MS,
  STREAMED_BODY_ROUTE,
} from './peer-protocol';
export type { HelloAnswer } from './peer-protocol';
export type { PeerStreamLimits } from './peer-stream';
export { ClusterAdminModule } from './admin/cluster-admin.module';
export type { ClusterAdminModuleAsyncOptions } from './admin/cluster-admin.module';
export { CLUSTER_ADMIN_OPTIONS } from './admin/cluster-admin.options';
export type { ClusterAdminOptions } from './admin/cluster-admin.options';
export { ClusterStatusService } from './admin/cluster-status.service';
export { ClusterStatusDto, MemberStatusDto } from './admin/cluster-status.dto';
export { joinCluster, promoteWhenCaughtUp, JoinError } from './admin/join-client';
export type { JoinOptions, PromoteOptions } from './admin/join-client';
export { PEER_TLS, PeerTls, PeerTlsModule } from './peer-tls';
export type { PeerTlsOptions } from './peer-tls';
