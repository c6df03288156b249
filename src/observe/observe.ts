import type { Engine } from '../adapters/engine.js';
import type { HostFiles } from '../adapters/fs.js';
import type { ObservedHost, RemoteDigest } from '../model/observed.js';
import type { DesiredState } from '../model/service.js';
import { isBerthEnvFile } from '../reconcile/container.js';
import { redactedPath } from '../model/files.js';

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
  const wanted = new Set(desired.services.map((s) => s.name));
  const [containers, images, remoteDigests, envFiles, strayEnvFiles, serviceFiles] = await Promise.all([
    engine.listContainers(),
    engine.listImages(),
    askRegistries(engine, tags),
    files.readMany(desired.envDir, [...wanted]),
    strayEnv(files, desired.envDir, wanted),
    renderedFiles(files, desired),
  ]);
  const out: ObservedHost = { containers, images, remoteDigests, envFiles, strayEnvFiles };
  if (Object.keys(serviceFiles).length) out.files = serviceFiles;
  return out;
}

/** The wanted services' rendered files as the host has them, and the redacted copies beside them. */
async function renderedFiles(
  files: HostFiles,
  desired: DesiredState,
): Promise<Record<string, string | null>> {
  const byDir = new Map<string, string[]>();
  for (const s of desired.services) {
    for (const f of s.files ?? []) {
      const p = f.rendered?.path;
      if (!p) continue;
      const paths = [p];
      if (f.rendered!.secrets.length) paths.push(redactedPath(p));
      for (const one of paths) {
        const cut = one.lastIndexOf('/');
        const dir = one.slice(0, cut);
        byDir.set(dir, [...(byDir.get(dir) ?? []), one.slice(cut + 1)]);
      }
    }
  }
  const out: Record<string, string | null> = {};
  await Promise.all(
    [...byDir].map(async ([dir, names]) => {
      const got = await files.readMany(dir, names);
      for (const n of names) out[`${dir}/${n}`] = got[n] ?? null;
    }),
  );
  return out;
}

/** More files than any env folder of berth's holds; a folder with more is not one. */
const MAX_ENV_FILES = 10_000;

/** The files in the env folder that berth wrote for services other than `wanted`. */
async function strayEnv(files: HostFiles, dir: string, wanted: Set<string>): Promise<string[]> {
  const others = (await files.list(dir, MAX_ENV_FILES)).filter((n) => !wanted.has(n));
  if (!others.length) return [];
  const contents = await files.readMany(dir, others);
  return others.filter((n) => {
    const c = contents[n];
    return c !== null && c !== undefined && isBerthEnvFile(n, c);
  });
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
