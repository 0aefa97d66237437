import { Global, Module } from '@nestjs/common';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { HttpMetrics } from './http-metrics';
import { MetricsController } from './metrics.controller';

/**
 * One prom-client Registry for the whole node, provided under its class as the DI token so that every
 * library can register its metrics without depending on the app.
 */
@Global()
@Module({
  controllers: [MetricsController],
  providers: [
    {
      provide: Registry,
      useFactory: () => {
        const registry = new Registry();
        collectDefaultMetrics({ register: registry });
        return registry;
      },
    },
    HttpMetrics,
  ],
  exports: [Registry],
})
export class MetricsModule {}
