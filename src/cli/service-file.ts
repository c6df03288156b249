import { stringify } from 'yaml';
import { FIELD_LIST } from '../config/fields.js';
import type { ServiceSpec } from '../model/service.js';

/** The service in the words of its file (snake_case), as berth will run it on this host. */
export function serviceAsFile(s: ServiceSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, f] of FIELD_LIST) {
    const v: unknown = s[f.spec];
    out[key] = v !== undefined && f.show ? f.show(v, s) : v;
  }
  return out;
}

/** The same as YAML text, as `berth render` prints it. */
export function serviceYaml(s: ServiceSpec): string {
  return stringify(serviceAsFile(s));
}
