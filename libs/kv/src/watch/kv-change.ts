/** One change the state machine made to the map, as a watcher sees it. */
export interface KvChange {
  type: 'put' | 'delete';
  key: string;
  /** The new value (put only). */
  value?: string;
  /** The log index of the entry that made the change. */
  index: number;
}

/**
 * Told by KvStateMachine about every change it applies (a put, or a delete of a key that existed: deleting a
 * missing key changes nothing, so it is no event, as in etcd) and about every restore (the map jumped to a
 * snapshot: the changes between the last one seen and the snapshot are unknown). Called synchronously from
 * apply()/restore(); must not throw and must not call back into the state machine.
 */
export interface KvChangeObserver {
  changed(change: KvChange): void;
  restored(): void;
}
