import { ConfigType, registerAs } from '@nestjs/config';
import { loadNodeConfig } from './node-config';

/** The name of the node's configuration namespace in @nestjs/config (`configService.get('node')`). */
export const NODE_CONFIG_NAMESPACE = 'node';

/**
 * The node's configuration as a @nestjs/config namespace read from `env`: load it with
 * `ConfigModule.forRoot({ load: [nodeConfigFrom(env)] })`. Loading it validates `env` (loadNodeConfig),
 * so an invalid environment fails the module's start with the same one-line ConfigError.
 */
export function nodeConfigFrom(env: NodeJS.ProcessEnv) {
  return registerAs(NODE_CONFIG_NAMESPACE, () => loadNodeConfig(env));
}

/**
 * The namespace read from process.env. `nodeConfig.KEY` is the injection token of the validated NodeConfig
 * (the same token whichever environment the namespace was loaded from):
 * `@Inject(nodeConfig.KEY) config: NodeConfigType`, or `inject: [nodeConfig.KEY]` in a module factory.
 */
export const nodeConfig = nodeConfigFrom(process.env);

/** The type injected under nodeConfig.KEY: the validated NodeConfig. */
export type NodeConfigType = ConfigType<typeof nodeConfig>;
