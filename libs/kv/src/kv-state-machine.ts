import { Injectable, Logger } from '@nestjs/common';
import { Entry, EntryType, StateMachine } from '@app/consensus';
import { decodeCommand } from './kv-command';

/** What applying one command did, handed back to the client that proposed it. */
export interface ApplyResult {
  /** Whether the key existed before the command. */
  existed: boolean;
  /** False when the entry was not a command this version understands (it is skipped on every node alike). */
  valid: boolean;
}

/**
 * The replicated map. Every node applies the same committed commands in the same order, so every node's
 * map is the same at the same applied index. Applying is deterministic and never throws: a malformed entry
 * is skipped identically everywhere.
 */
@Injectable()
export class KvStateMachine implements StateMachine {
  private readonly logger = new Logger('KvStateMachine');
  private readonly data = new Map<string, string>();

  /** Applies a committed entry; a no-op (empty data, or not a Normal entry) changes nothing and returns undefined. */
  apply(entry: Entry): ApplyResult | undefined {
    if (entry.type !== EntryType.Normal || entry.data.length === 0) return undefined;
    const command = decodeCommand(entry.data);
    if (!command) {
      this.logger.warn(`skipping entry ${entry.index} (term ${entry.term}): not a KV command`);
      return { existed: false, valid: false };
    }
    const existed = this.data.has(command.key);
    if (command.op === 'put') this.data.set(command.key, command.value);
    else this.data.delete(command.key);
    return { existed, valid: true };
  }

  get(key: string): string | undefined {
    return this.data.get(key);
  }

  get size(): number {
    return this.data.size;
  }
}
