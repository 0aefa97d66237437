export * from './core/types';
export * from './core/storage';
