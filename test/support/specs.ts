import type { ServiceSpec } from '../../src/model/service.js';

/**
 * A service as the loader would resolve it with nothing but an image: every default in place.
 * Tests of the planner and the executor change what they need through `over`.
 */
export function serviceSpec(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name,
    image: `127.0.0.1:5000/team/${name}:1`,
    env: {},
    volumes: [],
    labels: {},
    networkMode: 'host',
    restartPolicy: 'always',
    init: true,
    logOptions: {},
    pull: 'always',
    drain: false,
    file: `services/${name}.yaml`,
    ...over,
  };
}
