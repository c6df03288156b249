/** An image reference split the way the Docker engine reads it. */
export interface ImageRef {
  /** `host[:port]` when the image is not on Docker Hub. */
  registry?: string;
  /**
   * The name as docker lists it in RepoTags and RepoDigests: `127.0.0.1:5000/team/api`, `nginx`
   * (Docker Hub's `docker.io/library/` is dropped, as the engine does).
   */
  repository: string;
  /** `latest` when the reference names neither a tag nor a digest. */
  tag?: string;
  /** `sha256:<64 hex>`. */
  digest?: string;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6 = /^\[[a-fA-F0-9:]+\]$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const MAX_NAME = 255;
const HUB = new Set(['docker.io', 'index.docker.io']);

type Parsed = { ok: true; ref: ImageRef } | { ok: false; problem: string };

function parse(ref: string): Parsed {
  const fail = (problem: string): Parsed => ({ ok: false, problem });
  if (ref === '') return fail('the reference is empty');
  if (/\s/.test(ref)) return fail('a reference cannot contain whitespace');

  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) return fail('a digest must be "sha256:" followed by 64 lowercase hex digits');
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  // A colon before the last slash is a registry port, not a tag.
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      return fail(
        `tag "${tag}" must be 1-128 of letters, digits, "_", "." and "-", not starting with "." or "-"`,
      );
    }
  }

  const name = rest;
  if (name === '') return fail('the repository name is empty');
  if (name.length > MAX_NAME) return fail(`the repository name is longer than ${MAX_NAME} characters`);

  const parts = name.split('/');
  let registry: string | undefined;
  // Docker's rule: the first component is a registry only if it looks like a host.
  const first = parts[0] ?? '';
  if (
    parts.length > 1 &&
    (first.includes('.') || first.includes(':') || first === 'localhost' || /[A-Z]/.test(first))
  ) {
    const problem = checkDomain(first);
    if (problem) return fail(problem);
    registry = first;
    parts.shift();
  }
  for (const p of parts) {
    if (p === '') return fail('the repository name has an empty path component');
    if (!PATH_COMPONENT.test(p)) {
      if (PATH_COMPONENT.test(p.toLowerCase())) return fail('the repository name must be lowercase');
      return fail(
        `"${p}" is not a valid name component: use lowercase letters and digits, separated by ".", "_", "__" or "-"`,
      );
    }
  }

  let path = parts.join('/');
  if (registry !== undefined && HUB.has(registry)) registry = undefined;
  if (registry === undefined && parts.length === 2 && parts[0] === 'library') path = parts[1]!;
  const repository = registry === undefined ? path : `${registry}/${path}`;
  const out: ImageRef = { repository };
  if (registry !== undefined) out.registry = registry;
  if (tag !== undefined) out.tag = tag;
  else if (digest === undefined) out.tag = 'latest';
  if (digest !== undefined) out.digest = digest;
  return { ok: true, ref: out };
}

function checkDomain(domain: string): string | undefined {
  let host = domain;
  const portAt = domain.startsWith('[') ? domain.indexOf(']:') + 1 : domain.lastIndexOf(':');
  if (portAt > 0) {
    host = domain.slice(0, portAt);
    const port = domain.slice(portAt + 1);
    if (!/^[0-9]+$/.test(port)) return `registry port "${port}" must be a number`;
  }
  if (IPV6.test(host)) return undefined;
  if (!host.split('.').every((c) => DOMAIN_COMPONENT.test(c)))
    return `"${host}" is not a valid registry host`;
  return undefined;
}

/**
 * Why `ref` is not a valid Docker image reference, or undefined when it is.
 * Follows the grammar of the distribution/reference package the engine uses.
 */
export function imageRefProblem(ref: string): string | undefined {
  const r = parse(ref);
  return r.ok ? undefined : r.problem;
}

/**
 * Split an image reference into registry, repository, tag and digest.
 * @throws Error naming the reference and what is wrong with it; references from a loaded
 *   state repo have already been checked, so this only throws for unvalidated input.
 */
export function parseImageRef(ref: string): ImageRef {
  const r = parse(ref);
  if (!r.ok) throw new Error(`invalid image reference ${JSON.stringify(ref)}: ${r.problem}`);
  return r.ref;
}
