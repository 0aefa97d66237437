/** Randomized property test, second half: see property-1.spec.ts. */
import { describeSeedRange } from './property';

describeSeedRange(500, 1000, 'normal');
describeSeedRange(50, 100, 'long', 25);
