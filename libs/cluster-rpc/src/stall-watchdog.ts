/**
 * Calls `onStall` once when progress() has not been called for `timeoutMs` (checked a few times per timeout,
 * so it fires between timeoutMs and 1.25 x timeoutMs after the last progress). stop() cancels it.
 */
export class StallWatchdog {
  private last = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(timeoutMs: number, onStall: () => void) {
    this.timer = setInterval(() => {
      if (Date.now() - this.last <= timeoutMs) return;
      this.stop();
      onStall();
    }, Math.max(10, Math.floor(timeoutMs / 4)));
    // A transfer in flight must not keep the process alive on its own.
    this.timer.unref();
  }

  progress(): void {
    this.last = Date.now();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
