/**
 * Last-resort cleanup: what a chaos run created (processes, namespaces, links, rules) must not outlive it,
 * also when the harness dies of an uncaught exception or a signal. Each resource registers a synchronous
 * undo here while it exists; the normal path undoes it asynchronously and unregisters.
 *
 * Signal handlers are installed only while something is registered, and re-raise the signal after
 * cleaning up, so the process still dies of it (and a test runner's own handling is untouched otherwise).
 */
const tasks = new Set<() => void>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function runAll(): void {
  for (const task of [...tasks].reverse()) {
    tasks.delete(task);
    try {
      task();
    } catch {
      // Best effort: the next task must still run.
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runAll();
  uninstall();
  process.kill(process.pid, signal);
}

let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runAll);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', runAll);
  for (const s of SIGNALS) process.off(s, onSignal);
}

/** Registers a synchronous undo; returns the function that unregisters it (call it once undone). */
export function registerCleanup(task: () => void): () => void {
  tasks.add(task);
  install();
  return () => {
    tasks.delete(task);
    if (tasks.size === 0) uninstall();
  };
}
