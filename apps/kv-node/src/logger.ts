import { ConsoleLogger, LogLevel } from '@nestjs/common';
import { LogLevelName, NodeConfig } from '@app/config';

const LEVELS: Record<LogLevelName, LogLevel[]> = {
  error: ['fatal', 'error'],
  warn: ['fatal', 'error', 'warn'],
  info: ['fatal', 'error', 'warn', 'log'],
  debug: ['fatal', 'error', 'warn', 'log', 'debug'],
  verbose: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
};

/** Nest's logger, prefixed with the node id (text) or as one JSON object per line (LOG_FORMAT=json). */
export function createLogger(config: Pick<NodeConfig, 'nodeId' | 'logLevel' | 'logFormat'>): ConsoleLogger {
  return new ConsoleLogger({
    prefix: config.nodeId,
    logLevels: LEVELS[config.logLevel],
    json: config.logFormat === 'json',
    colors: config.logFormat !== 'json' && Boolean(process.stdout.isTTY),
  });
}
