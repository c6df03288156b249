/** Labels berth stamps on every container it manages. */
export const LABEL = {
  service: 'berth.service',
  configHash: 'berth.config-hash',
  spec: 'berth.spec',
  stateCommit: 'berth.state-commit',
  gitCommit: 'berth.git-commit',
  buildNumber: 'berth.build-number',
} as const;

/** The name a replaced container waits under until its successor is healthy. */
export function asideName(service: string): string {
  return `${service}.berth-old`;
}
