/**
 * Makes the fuzz suites (fast-check) deterministic, as every unit test is: one fixed seed unless FUZZ_SEED
 * names another, or `random` for a fresh one (printed by fast-check with any failure, so it replays).
 * Explore with `FUZZ_SEED=random npx jest fuzz --selectProjects unit`; a failure found that way is a bug to
 * fix and a case to add as a plain unit test.
 */
import * as fc from 'fast-check';

const requested = process.env.FUZZ_SEED;
if (requested !== 'random') fc.configureGlobal({ seed: requested === undefined ? 20261201 : Number(requested) });
