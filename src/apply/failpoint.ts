/**
 * Crash points for the kill tests: with BERTH_FAILPOINT=<name> set, the process kills itself
 * with SIGKILL when it reaches that point, exactly as `kill -9` at that moment would. Unset in
 * normal use; reading one environment variable is all it costs.
 */
export type FailpointName =
  'after-env-file' | 'after-pull' | 'after-drain' | 'after-aside' | 'after-create' | 'after-start';

export function failpoint(name: FailpointName): void {
  if (process.env.BERTH_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}
