import { Clock, Timer } from './ports';

/** The Clock port on Node's own timers: what production binds. */
export const systemClock: Clock = {
  now: () => Date.now(),
  every(ms: number, fn: () => void): Timer {
    const handle = setInterval(fn, ms);
    return { cancel: () => clearInterval(handle) };
  },
  after(ms: number, fn: () => void): Timer {
    const handle = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(handle) };
  },
  defer(fn: () => void): void {
    setImmediate(fn);
  },
};
