import { runRandomSchedule, ScheduleLength } from './random-schedule';

/**
 * Registers the randomized property test for seeds [from, to): one jest test per chunk of seeds, each
 * seed a random schedule with every invariant checked after every step. A failure names the seed and the
 * command that replays it.
 */
export function describeSeedRange(from: number, to: number, length: ScheduleLength, chunk = 100): void {
  describe(`random schedules (${length}), seeds ${from}..${to - 1}`, () => {
    for (let start = from; start < to; start += chunk) {
      const end = Math.min(to, start + chunk);
      it(`seeds ${start}..${end - 1} keep every invariant`, () => {
        const failures: string[] = [];
        for (let seed = start; seed < end; seed++) {
          try {
            runRandomSchedule(seed, length);
          } catch (e) {
            failures.push((e as Error).message);
          }
        }
        if (failures.length > 0) throw new Error(`${failures.length} seed(s) failed; the first:\n${failures[0]}`);
      }, 120_000);
    }
  });
}
