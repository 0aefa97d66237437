export { ClusterRpcModule } from './cluster-rpc.module';
export type { ClusterRpcModuleAsyncOptions } from './cluster-rpc.module';
export { HttpPeerTransport, CLUSTER_RPC_OPTIONS } from './http-peer-transport';
export type { ClusterRpcOptions } from './http-peer-transport';
export { encodeMessages, decodeMessages, MessageDecodeError } from './message-codec';
export { FrameDecoder, FrameError, FRAME_HEADER, PONG } from './frame';
export { PEER_HEADERS, PEER_STREAM_CONTENT_TYPE, PEER_STREAM_PATH, PONG_INTERVAL_MS } from './peer-protocol';
export type { PeerStreamLimits } from './peer-stream';
