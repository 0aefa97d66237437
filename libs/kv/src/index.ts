export { KvModule, KvStateMachineModule } from './kv.module';
export type { KvModuleAsyncOptions } from './kv.module';
export { KvService, KV_OPTIONS } from './kv.service';
export type { KvOptions } from './kv.service';
export { KvStateMachine } from './kv-state-machine';
export type { ApplyResult } from './kv-state-machine';
export { encodeCommand, decodeCommand } from './kv-command';
export type { KvCommand } from './kv-command';
export { mapKvError } from './kv-errors.filter';
