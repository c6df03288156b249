import { createHash } from 'node:crypto';
import type { ConfigIssue } from '../model/errors.js';
import { FILES_SOURCE_DIR, hostFileName, MAX_RENDERED_FILE_BYTES, type ServiceFile } from '../model/files.js';
import type { ServiceSpec } from '../model/service.js';
import { positionOf, type Template } from '../template/ast.js';
import { checkTemplate, type TemplateSchema } from '../template/check.js';
import { parseTemplate } from '../template/parse.js';
import { renderRedacted, renderTemplate, type RenderContext } from '../template/render.js';
import { suggest } from './issues.js';
import { issueAt, type YamlFile, type YamlPath } from './yaml-file.js';

// `files:` in services: the checks that need the repo's other files (the templates), rendering a
// service's files for one host, and where they go on the host.

/** A `files:` list as some file writes it: a service's own, or berth.yaml `defaults`. */
export interface FilesAt {
  y: YamlFile;
  /** Where the list is in `y`: `[..., 'files']`. */
  path: YamlPath;
  files: ServiceFile[];
}

/** Whether a repo path is a `files:` template that only matters when a service names it. */
export function isTemplateOnly(file: string): boolean {
  return file.startsWith(FILES_SOURCE_DIR) && !/\.ya?ml$/i.test(file);
}

/**
 * Check every `files:` list: each source must be a readable file of the repo, and each template
 * is parsed and checked once, however many services name it, with its problems at
 * `files/x.conf:LINE:COL`. Returns the parsed templates by source path.
 *
 * `unreadable` are the repo's files under files/ that exist but could not be read (too large,
 * not UTF-8): an error only for those a service names.
 */
export function checkFiles(
  lists: FilesAt[],
  repoFiles: ReadonlyMap<string, string>,
  unreadable: ConfigIssue[],
  schema: TemplateSchema,
  issues: ConfigIssue[],
): Record<string, Template> {
  const templates: Record<string, Template> = {};
  const checked = new Set<string>();
  const known = [...repoFiles.keys()].filter((f) => f.startsWith(FILES_SOURCE_DIR));
  for (const { y, path, files } of lists) {
    files.forEach((f, i) => {
      const at: YamlPath = [...path, i, 'source'];
      const text = repoFiles.get(f.source);
      if (text === undefined) {
        const bad = unreadable.find((u) => u.file === f.source);
        if (bad) {
          if (!checked.has(f.source)) issues.push(bad);
          checked.add(f.source);
          return;
        }
        const hint = suggest(f.source, known);
        issues.push(
          issueAt(
            y,
            at,
            `template ${f.source} is not in the repo${hint ? ` (did you mean "${hint}"?)` : ''}`,
          ),
        );
        return;
      }
      if (checked.has(f.source)) return;
      checked.add(f.source);
      const parsed = parseTemplate(text);
      if (!parsed.ok) {
        issues.push(templateIssue(f.source, text, parsed.error.offset, parsed.error.message));
        return;
      }
      const problems = checkTemplate(parsed.template, schema);
      for (const p of problems) issues.push(templateIssue(f.source, text, p.offset, p.message));
      if (!problems.length) templates[f.source] = parsed.template;
    });
  }
  return templates;
}

function templateIssue(file: string, text: string, offset: number, message: string): ConfigIssue {
  return { file, ...positionOf(text, offset), message, severity: 'error' };
}

/** The container path of a volume (`SRC:DST[:MODE]` or `DST`). */
export function volumeTarget(v: string): string {
  const parts = v.split(':');
  const dst = parts.length === 1 ? parts[0]! : parts[1]!;
  return dst.replace(/\/+$/, '') || '/';
}

/**
 * A file's target that is also a volume's: docker refuses two mounts at one path. Templated
 * volumes are checked once rendered for a host.
 */
export function volumeCollisions(
  files: ServiceFile[],
  volumes: string[],
  templated: (v: string) => boolean,
): Array<{ index: number; message: string }> {
  const out: Array<{ index: number; message: string }> = [];
  files.forEach((f, index) => {
    const v = volumes.find((x) => !templated(x) && volumeTarget(x) === f.target);
    if (v !== undefined)
      out.push({ index, message: `target ${f.target} is also the target of volume ${JSON.stringify(v)}` });
  });
  return out;
}

/**
 * A service's files rendered for one host: content, redacted text, secrets, mode and (without
 * secrets) the content's digest. Problems are located in the template file itself.
 */
export function renderFiles(
  spec: ServiceSpec,
  templates: Record<string, Template> | undefined,
  ctx: RenderContext,
): { ok: true; files: ServiceFile[] } | { ok: false; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const held = `(service ${spec.name} is left as it runs)`;
  const out: ServiceFile[] = [];
  for (const f of spec.files ?? []) {
    const t = templates?.[f.source];
    if (!t) {
      issues.push({ file: f.source, message: `template was not loaded ${held}`, severity: 'error' });
      continue;
    }
    const r = renderTemplate(t, ctx, { multiline: true, maxLength: MAX_RENDERED_FILE_BYTES });
    if (!r.ok) {
      issues.push(templateIssue(f.source, t.source, r.error.offset, `${r.error.message} ${held}`));
      continue;
    }
    const bytes = Buffer.byteLength(r.value);
    if (bytes > MAX_RENDERED_FILE_BYTES) {
      issues.push({
        file: f.source,
        line: 1,
        col: 1,
        message: `renders ${bytes} bytes for this host; a file may have at most ${MAX_RENDERED_FILE_BYTES} bytes (1 MiB) ${held}`,
        severity: 'error',
      });
      continue;
    }
    const secrets = r.secretsUsed;
    // Same template, same context: the redacted render cannot fail where the clear one did not.
    const shown = secrets.length ? renderRedacted(t, ctx, { multiline: true }) : r;
    const rendered: ServiceFile['rendered'] = {
      content: r.value,
      shown: shown.ok ? shown.value : secrets.map((s) => `<secret:${s}>`).join(''),
      secrets,
      mode: f.mode ?? (secrets.length ? 0o600 : 0o644),
    };
    // A file that uses a secret gets a keyed digest with the host's key (withSecretDigests).
    if (!secrets.length) rendered.digest = `sha256:${createHash('sha256').update(r.value).digest('hex')}`;
    out.push({ ...f, rendered });
  }
  return issues.length ? { ok: false, issues } : { ok: true, files: out };
}

/** Where each file of each service goes on the host: `<filesDir>/<service>/<hostFileName(target)>`. */
export function placeFiles(services: ServiceSpec[], filesDir: string): ServiceSpec[] {
  return services.map((s) =>
    s.files
      ? {
          ...s,
          files: s.files.map((f) =>
            f.rendered
              ? {
                  ...f,
                  rendered: { ...f.rendered, path: joinPath(filesDir, s.name, hostFileName(f.target)) },
                }
              : f,
          ),
        }
      : s,
  );
}

/** `<dir>/<parts...>`, whether or not dir ends with "/". */
export function joinPath(dir: string, ...parts: string[]): string {
  return [dir.replace(/\/+$/, ''), ...parts].join('/');
}
