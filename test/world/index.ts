import { startEngine, type EngineHandle } from './engine.js';
import { buildTestImage, pushImage, type TestImageOptions } from './images.js';
import { startRegistry, type RegistryHandle } from './registry.js';

export { startEngine, type EngineHandle } from './engine.js';
export { startRegistry, type RegistryHandle } from './registry.js';
export {
  buildTestImage,
  docker,
  pushImage,
  tagImage,
  type TestImageBehaviour,
  type TestImageOptions,
} from './images.js';
export { freePort, waitUntil } from './proc.js';

/** One engine, one registry, and two versions of a demo web image pushed to it. */
export interface World {
  engine: EngineHandle;
  registry: RegistryHandle;
  /** DOCKER_HOST of the engine. */
  dockerHost: string;
  images: {
    /** `${registry}/demo/web:1`, serving "1". Pushed and present in the engine. */
    web1: string;
    /** `${registry}/demo/web:2`, serving "2". Pushed and present in the engine. */
    web2: string;
  };
  /** Build `ref` anew (serving `version`) and push it: the tag now names another digest. */
  repush(ref: string, version: string, opts?: Omit<TestImageOptions, 'version'>): Promise<void>;
  /** Build and push `ref`. */
  publish(ref: string, opts: TestImageOptions): Promise<void>;
  /** Stops registry and engine, each by PID; safe to call twice. */
  stop(): Promise<void>;
}

/** Start an engine and a registry in parallel, then build and push demo/web:1 and :2. */
export async function startWorld(): Promise<World> {
  const [engineR, registryR] = await Promise.allSettled([startEngine(), startRegistry()]);
  const started = [engineR, registryR].flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stopAll = async () => {
    await Promise.all(started.map((h) => h.stop().catch(() => undefined)));
  };
  if (engineR.status === 'rejected' || registryR.status === 'rejected') {
    await stopAll();
    throw engineR.status === 'rejected' ? engineR.reason : (registryR as PromiseRejectedResult).reason;
  }
  const engine = engineR.value;
  const registry = registryR.value;
  const publish = async (ref: string, opts: TestImageOptions) => {
    await buildTestImage(engine.dockerHost, ref, opts);
    await pushImage(engine.dockerHost, ref);
  };
  const images = { web1: `${registry.address}/demo/web:1`, web2: `${registry.address}/demo/web:2` };
  let stopped: Promise<void> | undefined;
  try {
    await publish(images.web1, { version: '1' });
    await publish(images.web2, { version: '2' });
  } catch (e) {
    await stopAll();
    throw e;
  }
  return {
    engine,
    registry,
    dockerHost: engine.dockerHost,
    images,
    repush: (ref, version, opts) => publish(ref, { ...opts, version }),
    publish,
    stop: () => (stopped ??= stopAll()),
  };
}
export { startHaproxy, type HaproxyHandle, type HeldRequest, type BackendServer } from './haproxy.js';
export { startOctavia, type OctaviaFake, type OctaviaCall, type FakeMember } from './octavia.js';
export { startElbv2, type Elbv2Fake, type Elbv2Call } from './elbv2.js';
