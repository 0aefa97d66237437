export * from './node-config';
export * from './node-config.namespace';
export * from './api-tokens';
export * from './tls-config';
