// Builds dist/: berth's own code and the libraries every state-repo read needs, bundled into a
// few ES module files, so a command starts by reading a handful of files instead of some 300
// (issue 16: start-up time and memory). `npm run typecheck` is what checks the types.
//
// - dist/cli/main.js is the entry (package.json "bin"); each command, and each module loaded
//   only when it is needed (the engine client, SQLite, age, the agent), stays a dynamic import,
//   so it becomes a chunk of its own in dist/chunks/ and a command still loads only what it uses.
// - Bundled: BUNDLED below, pure JavaScript, read by every command that reads a repo. Every
//   other dependency stays a package in node_modules, loaded when a command needs it: native
//   code (better-sqlite3), a client berth trims at load time (dockerode), a logger that starts
//   worker threads from its own files (pino), and the plug-ins and agent parts few commands load.
// - dist/meta.json maps every output file to the source files and packages in it; the start-up
//   tests read it to say which modules a command loaded.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUNDLED = ['zod', 'yaml', 'commander', 'diff', 'age-encryption'];

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
};
for (const name of BUNDLED) {
  if (!(name in pkg.dependencies)) throw new Error(`build: ${name} is bundled but not a dependency`);
}
const external = Object.keys(pkg.dependencies)
  .filter((name) => !BUNDLED.includes(name))
  .flatMap((name) => [name, `${name}/*`]);

const dist = path.join(ROOT, 'dist');
rmSync(dist, { recursive: true, force: true });
const result = await build({
  absWorkingDir: ROOT,
  entryPoints: ['src/cli/main.ts'],
  outdir: 'dist/cli',
  chunkNames: '../chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  // The bundled CommonJS libraries (yaml, commander) require node's own modules; an ES module
  // has no `require`, so each output file makes one.
  banner: {
    js: "import { createRequire as __berthCreateRequire } from 'node:module'; const require = __berthCreateRequire(import.meta.url);",
  },
  metafile: true,
  logLevel: 'warning',
});
// A bundled CommonJS library reached by `await import()` gives only a default export in the
// bundle, where node gives named ones too: refuse, so the difference never reaches a user.
const { inputs } = result.metafile;
for (const [file, input] of Object.entries(inputs)) {
  for (const i of input.imports) {
    if (i.kind === 'dynamic-import' && !i.external && inputs[i.path]?.format === 'cjs') {
      throw new Error(
        `build: ${file} imports CommonJS ${i.original ?? i.path} with import(): import it statically from a module that is itself loaded with import()`,
      );
    }
  }
}
writeFileSync(path.join(dist, 'meta.json'), JSON.stringify(result.metafile, null, 1));
const outputs = Object.keys(result.metafile.outputs).length;
process.stdout.write(`build: ${outputs} files in dist/\n`);
