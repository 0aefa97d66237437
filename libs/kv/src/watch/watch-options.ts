/** How watch streams are kept (KvOptions.watch; defaults in DEFAULT_STREAM_OPTIONS). */
export interface WatchStreamOptions {
  /** A `: ping` comment on live streams this often. */
  heartbeatMs: number;
  /** Unsent bytes a stream may hold before it waits for the client (at least the socket's high-water mark). */
  bufferBytes: number;
}

export const DEFAULT_STREAM_OPTIONS: WatchStreamOptions = { heartbeatMs: 15_000, bufferBytes: 256 * 1024 };
