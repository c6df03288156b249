/**
 * The wait of the cloud drain providers: look at the load balancer again and again until it says
 * what is waited for, or a deadline passes.
 */
import { sleep } from './settings.js';

export interface Poll<T> {
  /** When to give up (epoch milliseconds); a wait may share it with the waits around it. */
  deadline: number;
  /** Time between two looks. */
  intervalMs: number;
  /** One look; throwing ends the wait (a state that can never become the one waited for). */
  look: () => Promise<T>;
  /** Whether a look shows what is waited for. */
  done: (seen: T) => boolean;
  /** Told of each look that is not done while time is left, before the sleep (for progress). */
  onWait?: (seen: T) => void;
  /** Aborting rejects the wait with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Look until `done`, or until the deadline passes: the last look, and whether it was done. The
 * first look is made even when the deadline has passed already. Bounded in tries too, so a
 * clock jump cannot make the loop endless.
 */
export async function pollUntil<T>(p: Poll<T>): Promise<{ last: T; done: boolean }> {
  const maxTries = Math.ceil(Math.max(0, p.deadline - Date.now()) / p.intervalMs) + 2;
  for (let tries = 1; ; tries++) {
    const last = await p.look();
    if (p.done(last)) return { last, done: true };
    const left = p.deadline - Date.now();
    if (left <= 0) return { last, done: false };
    p.onWait?.(last);
    await sleep(Math.min(p.intervalMs, left), p.signal);
    if (tries >= maxTries) return { last, done: false };
  }
}
