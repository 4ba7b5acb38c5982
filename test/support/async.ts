/* Bounded waits and cleanups for tests that talk to real servers. */

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Runs every cleanup step, each bounded, so a failing one leaves none of the others undone; then reports all failures. */
export async function cleanUp(what: string, steps: [string, () => Promise<unknown>][], stepMs = 15_000): Promise<void> {
  const errors: string[] = [];
  for (const [name, step] of steps) {
    try {
      await withTimeout(step(), stepMs, name);
    } catch (e) {
      errors.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (errors.length > 0) throw new Error(`${what} cleanup failed: ${errors.join('; ')}`);
}

/** Polls `probe` every 50 ms until it gives a value other than null; fails after `timeoutMs`. */
export async function until<T>(what: string, probe: () => T | null | Promise<T | null>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
