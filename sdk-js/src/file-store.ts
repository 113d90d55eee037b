/**
 * A file-backed queue for Node: one JSON file, replaced atomically (write a temp file, fsync,
 * rename, fsync the directory) under a lock file, so a `track()` that resolved survives a crash
 * and several processes may share the file (each operation is a locked read-modify-write).
 */
import { StateStore, emptyState, type State } from "./store.js";

const STALE_LOCK_MS = 30_000;

export class FileStore extends StateStore {
  private chain: Promise<unknown> = Promise.resolve();
  constructor(readonly path: string) {
    super();
  }
  protected transact<T>(fn: (s: State) => T, write: boolean): Promise<T> {
    const run = this.chain.then(() => this.locked(fn, write));
    this.chain = run.catch(() => undefined);
    return run;
  }
  private async locked<T>(fn: (s: State) => T, write: boolean): Promise<T> {
    const fs = await import("node:fs/promises");
    const { dirname } = await import("node:path");
    const dir = dirname(this.path);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const lock = this.path + ".lock";
    for (let i = 0; ; i++) {
      try {
        await (await fs.open(lock, "wx", 0o600)).close();
        break;
      } catch (e: any) {
        if (e.code !== "EEXIST") throw e;
        const st = await fs.stat(lock).catch(() => null);
        if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) await fs.rm(lock, { force: true });
        else await new Promise((r) => setTimeout(r, Math.min(50, 2 + i)));
      }
    }
    try {
      let state: State;
      try {
        state = JSON.parse(await fs.readFile(this.path, "utf8"));
      } catch (e: any) {
        if (e.code !== "ENOENT") throw e;
        state = emptyState();
      }
      const out = fn(state);
      if (write) {
        const tmp = `${this.path}.${process.pid}.tmp`;
        const fh = await fs.open(tmp, "w", 0o600);
        try {
          await fh.writeFile(JSON.stringify(state));
          await fh.sync();
        } finally {
          await fh.close();
        }
        await fs.rename(tmp, this.path);
        const dh = await fs.open(dir, "r");
        await dh.sync().catch(() => undefined);
        await dh.close();
      }
      return out;
    } finally {
      await fs.rm(lock, { force: true });
    }
  }
}
