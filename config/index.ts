export * from './node-config';
export * from './node-config.namespace';
