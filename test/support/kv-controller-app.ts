import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test, TestingModule } from '@nestjs/testing';
import { Entry, EntryType, RaftNode } from '@app/consensus';
import { KvController } from '../../libs/kv/src/kv.controller';
import { KV_OPTIONS, KvOptions, KvService } from '../../libs/kv/src/kv.service';
import { KvStateMachine } from '../../libs/kv/src/kv-state-machine';

/** One request's answer as the KV controller specs read it. */
export interface InjectedAnswer {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: Record<string, unknown>;
}

/**
 * The KV controller on Fastify (`inject`, no socket) over a real KvStateMachine, with a stand-in for Raft:
 * every proposal gets the next index and is applied at once, or when the test releases it (`hold()`, so that
 * two requests can both be proposed before either applies, as concurrent requests on a real leader are).
 */
export class KvControllerApp {
  /** Every proposed command, in order. */
  readonly proposals: Uint8Array[] = [];
  private held: Array<() => void> | undefined;

  private constructor(
    readonly app: NestFastifyApplication,
    readonly moduleRef: TestingModule,
    readonly stateMachine: KvStateMachine,
  ) {}

  static async start(options: { kv?: KvOptions; configure?: (app: NestFastifyApplication) => void } = {}): Promise<KvControllerApp> {
    const stateMachine = new KvStateMachine();
    let index = 0;
    let harness: KvControllerApp | undefined;
    const raft: Partial<RaftNode> = {
      propose: async (data: Uint8Array) => {
        harness!.proposals.push(data);
        const entry: Entry = { term: 1, index: ++index, type: EntryType.Normal, data };
        if (harness!.held) await new Promise<void>((resolve) => harness!.held!.push(resolve));
        return { index: entry.index, result: stateMachine.apply(entry) };
      },
      readBarrier: async () => index,
    };
    const moduleRef = await Test.createTestingModule({
      controllers: [KvController],
      providers: [
        KvService,
        { provide: KvStateMachine, useValue: stateMachine },
        { provide: RaftNode, useValue: raft },
        { provide: KV_OPTIONS, useValue: options.kv ?? { maxKeyBytes: 64, maxValueBytes: 256 } },
      ],
    }).compile();
    const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    options.configure?.(app);
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    harness = new KvControllerApp(app, moduleRef, stateMachine);
    return harness;
  }

  get service(): KvService {
    return this.moduleRef.get(KvService);
  }

  /** Proposals made from now on wait until release(). */
  hold(): void {
    this.held = [];
  }

  /** Applies every held proposal, in the order proposed. */
  release(): void {
    for (const resume of this.held?.splice(0) ?? []) resume();
  }

  async request(method: 'GET' | 'PUT' | 'DELETE', url: string, headers: Record<string, string> = {}, value?: string): Promise<InjectedAnswer> {
    const response = await this.app.inject({
      method,
      url,
      headers: value === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      payload: value === undefined ? undefined : JSON.stringify({ value }),
    });
    return { status: response.statusCode, headers: response.headers, body: response.json() as Record<string, unknown> };
  }

  close(): Promise<void> {
    return this.app.close();
  }
}
