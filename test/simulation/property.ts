import { DiskFullStats, SnapshotStats } from './cluster';
import { MembershipStats, runRandomSchedule, ScheduleLength } from './random-schedule';

/**
 * Registers the randomized property test for seeds [from, to): one jest test per chunk of seeds, each
 * seed a random schedule with every invariant checked after every step. A failure names the seed and the
 * command that replays it. Each chunk also checks that its schedules exercised snapshots (logs compacted,
 * followers caught up by InstallSnapshot, crashes in the middle of snapshot writes) and membership changes
 * (nodes added, promoted and caught up, leaders removed, removed nodes stopped, refusals met) and full
 * disks (writes refused, nodes frozen and resumed, requests refused with StorageFullError): a schedule
 * change that stopped producing them would leave that code untested without anyone noticing.
 */
export function describeSeedRange(from: number, to: number, length: ScheduleLength, chunk = 100): void {
  describe(`random schedules (${length}), seeds ${from}..${to - 1}`, () => {
    for (let start = from; start < to; start += chunk) {
      const end = Math.min(to, start + chunk);
      it(`seeds ${start}..${end - 1} keep every invariant, with snapshots installed, logs compacted and members changed`, async () => {
        const failures: string[] = [];
        const seen: Partial<SnapshotStats> = {};
        const changes: Partial<MembershipStats> = {};
        const disk: Partial<DiskFullStats> = {};
        for (let seed = start; seed < end; seed++) {
          try {
            const { snapshots, membership, disk: full } = await runRandomSchedule(seed, length);
            for (const [k, v] of Object.entries(full) as [keyof DiskFullStats, number][]) disk[k] = (disk[k] ?? 0) + v;
            for (const [k, v] of Object.entries(snapshots) as [keyof SnapshotStats, number][]) seen[k] = (seen[k] ?? 0) + v;
            for (const [k, v] of Object.entries(membership) as [keyof MembershipStats, number][]) changes[k] = (changes[k] ?? 0) + v;
          } catch (e) {
            failures.push((e as Error).message);
          }
        }
        if (failures.length > 0) throw new Error(`${failures.length} seed(s) failed; the first:\n${failures[0]}`);
        const seeds = end - start;
        expect(seen.installs).toBeGreaterThanOrEqual(Math.ceil(seeds / 10));
        expect(seen.compactions).toBeGreaterThanOrEqual(seeds);
        expect(seen.restoredAtStart).toBeGreaterThan(0);
        expect(seen.crashesDuringWrite).toBeGreaterThan(0);
        // Exactly one outcome per MsgSnap: none twice; only those still in flight at the end have none.
        expect(seen.delivered! + seen.failed!).toBeLessThanOrEqual(seen.sent!);
        expect(seen.delivered! + seen.failed!).toBeGreaterThanOrEqual(seen.sent! - 2);
        expect(changes.added).toBeGreaterThan(0);
        expect(changes.promoted).toBeGreaterThan(0);
        expect(changes.addedVotersAtEnd).toBeGreaterThan(0);
        expect(changes.leaderRemovals).toBeGreaterThan(0);
        expect(changes.stopped).toBeGreaterThan(0);
        expect(changes.refused).toBeGreaterThan(0);
        expect(disk.refusedSaves).toBeGreaterThan(0);
        expect(disk.resumed).toBeGreaterThan(0);
        expect(disk.refusedRequests).toBeGreaterThan(0);
      }, 120_000);
    }
  });
}
