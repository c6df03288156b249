import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { berth, MAIN, type CliResult } from './cli.js';

/**
 * dist/ is a bundle (scripts/build.ts): each file loaded from it stands for the source files and
 * packages the build put into it, as its dist/meta.json lists them.
 */
function bundleContents(): Map<string, string[]> {
  const dist = path.resolve(path.dirname(MAIN), '..');
  const meta = JSON.parse(readFileSync(path.join(dist, 'meta.json'), 'utf8')) as {
    outputs: Record<string, { inputs: Record<string, unknown> }>;
  };
  const root = path.dirname(dist);
  return new Map(
    Object.entries(meta.outputs).map(([file, out]) => [
      path.join(root, file),
      Object.keys(out.inputs).map((input) => path.join(root, input)),
    ]),
  );
}

/**
 * Runs the built berth with a preload that writes down every module the process loads, so a
 * test can say what a command must not load (the engine client for `validate`, SQLite for a
 * no-op `apply`). Two records, because node 20 has two loaders:
 * - every ES module, and the entry file of every CommonJS package imported from one, through
 *   a `load` hook; the hook runs on its own thread and writes each URL synchronously, before the
 *   module is evaluated, so nothing is lost however the process ends;
 * - every CommonJS file (a package's own `require`s, `createRequire`), from node's require
 *   cache, written when the process exits.
 */
const PRELOAD = `
import { register, createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
const out = process.env.BERTH_TEST_MODULE_TRACE;
const hook = [
  'import { appendFileSync } from "node:fs";',
  'let out;',
  'export function initialize(data) { out = data.out; }',
  'export async function load(url, context, next) { appendFileSync(out, url + "\\\\n"); return next(url, context); }',
].join('\\n');
register('data:text/javascript,' + encodeURIComponent(hook), { data: { out } });
const cache = createRequire(import.meta.url).cache;
process.on('exit', () => appendFileSync(out, Object.keys(cache).map((f) => f + '\\n').join('')));
`;

export interface TracedRun extends CliResult {
  /**
   * Every module file (or `node:` URL) the process loaded, in the order seen (ES modules first);
   * a file of the bundle is replaced by the source files and bundled packages in it.
   */
  modules: string[];
  /** The npm packages among them, by name (`zod`, `@noble/hashes`). */
  packages: Set<string>;
  /** Whether a module of ours (`adapters/docker.js` for src/adapters/docker.ts) was loaded. */
  loadedOwn(file: string): boolean;
}

/** `berth ...args` in its own process, with the modules it loaded. */
export async function tracedBerth(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<TracedRun> {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-trace-'));
  try {
    const preload = path.join(dir, 'preload.mjs');
    const out = path.join(dir, 'modules.txt');
    writeFileSync(preload, PRELOAD);
    writeFileSync(out, '');
    const result = await berth(args, {
      ...env,
      BERTH_TEST_MODULE_TRACE: out,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${preload}`.trim(),
    });
    const contents = bundleContents();
    const modules = readFileSync(out, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((m) => m.replace(/^file:\/\//, ''))
      .flatMap((m) => contents.get(m) ?? [m]);
    const packages = new Set<string>();
    for (const m of modules) {
      const hit = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(m);
      if (hit) packages.add(hit[1]!);
    }
    const own = modules.filter((m) => m.includes('/src/'));
    return {
      ...result,
      modules,
      packages,
      loadedOwn: (file) => own.some((m) => m.endsWith(`/src/${file.replace(/\.js$/, '.ts')}`)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
