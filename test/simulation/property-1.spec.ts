/**
 * Randomized property test, first half (the two halves run in parallel): 500 normal and 50 long random
 * schedules, with membership changes among the faults in most of them. Invariants: election safety,
 * leader append-only, log matching, leader completeness, state machine safety, durability of committed
 * entries and acknowledged proposals on a quorum of the configuration, linearizable read indices, and
 * progress once the faults are healed (every member, added ones included, applies everything). Replay a seed: npm run test:sim -- --seed <seed>.
 */
import { describeSeedRange } from './property';

describeSeedRange(0, 500, 'normal');
describeSeedRange(0, 50, 'long', 25);
