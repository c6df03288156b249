import type { Engine } from '../adapters/engine.js';
import type { HostFiles } from '../adapters/fs.js';
import type { ObservedHost, RemoteDigest } from '../model/observed.js';
import type { DesiredState } from '../model/service.js';

/** How many registry questions run at once: enough to hide latency, few enough to be polite. */
const REGISTRY_CONCURRENCY = 16;

/**
 * One snapshot of the host, read once before planning: containers, images, the digest each
 * `pull: always` tag names now, and the env files. Reads only.
 */
export async function observeHost(
  engine: Engine,
  files: HostFiles,
  desired: DesiredState,
): Promise<ObservedHost> {
  const tags = [
    ...new Set(
      desired.services.filter((s) => s.pull === 'always' && !s.image.includes('@')).map((s) => s.image),
    ),
  ];
  const [containers, images, remoteDigests, envFiles] = await Promise.all([
    engine.listContainers(),
    engine.listImages(),
    askRegistries(engine, tags),
    files.readMany(
      desired.envDir,
      desired.services.map((s) => s.name),
    ),
  ]);
  return { containers, images, remoteDigests, envFiles };
}

async function askRegistries(engine: Engine, tags: string[]): Promise<Record<string, RemoteDigest>> {
  const out: Record<string, RemoteDigest> = {};
  let next = 0;
  const worker = async () => {
    while (next < tags.length) {
      const tag = tags[next++]!;
      try {
        out[tag] = { digest: await engine.remoteDigest(tag) };
      } catch (e) {
        out[tag] = { error: (e as Error).message };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(REGISTRY_CONCURRENCY, tags.length) }, worker));
  return out;
}
