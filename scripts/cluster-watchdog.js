'use strict';
/**
 * Preloaded (`node -r`) into every node that `npm run cluster` starts. The supervisor holds the write end
 * of the node's stdin; when the supervisor dies for any reason (SIGKILL, a closed terminal, a crash), the
 * pipe closes and the node shuts itself down cleanly (SIGTERM: hand over leadership, close the WAL)
 * instead of living on as an orphan that holds its port and its data directory's lock.
 */
const stopSelf = () => {
  process.stderr.write('the supervisor (npm run cluster) is gone: stopping\n');
  process.kill(process.pid, 'SIGTERM');
};
process.stdin.once('end', stopSelf);
process.stdin.once('error', stopSelf);
process.stdin.resume();
// The watch must not keep a node alive on its own.
if (typeof process.stdin.unref === 'function') process.stdin.unref();
