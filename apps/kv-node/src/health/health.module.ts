import { DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller';

@Module({})
export class HealthModule {
  /** `consensus` is the configured ConsensusModule (it exports RaftNodeService). */
  static register(consensus: DynamicModule): DynamicModule {
    return {
      module: HealthModule,
      imports: [TerminusModule.forRoot({ errorLogStyle: 'pretty', logger: false }), consensus],
      controllers: [HealthController],
    };
  }
}
