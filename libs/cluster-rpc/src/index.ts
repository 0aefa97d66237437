export { ClusterRpcModule } from './cluster-rpc.module';
export type { ClusterRpcModuleAsyncOptions } from './cluster-rpc.module';
export { HttpPeerTransport, CLUSTER_RPC_OPTIONS } from './http-peer-transport';
export type { ClusterRpcOptions } from './http-peer-transport';
export { encodeMessages, decodeMessages, MessageDecodeError } from './message-codec';
export { PEER_HEADERS, PEER_MESSAGES_PATH } from './peer-protocol';
export type { PeerQueueLimits } from './peer-queue';
