/** Labels berth stamps on every container it manages. */
export const LABEL = {
  service: 'berth.service',
  configHash: 'berth.config-hash',
  spec: 'berth.spec',
  stateCommit: 'berth.state-commit',
  gitCommit: 'berth.git-commit',
  buildNumber: 'berth.build-number',
} as const;
