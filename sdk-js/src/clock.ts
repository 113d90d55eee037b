/** Time as the client sees it: injectable, so tests run on a fake clock. */
export interface Clock {
  /** Unix milliseconds (wall clock: leases are shared between tabs and processes). */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as any),
};
