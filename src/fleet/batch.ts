/**
 * Batches of hosts for `berth deploy`: pure, and light enough for the command table to load
 * (no schemas), since `--batch` is parsed when the command line is.
 */
import { UsageError } from '../model/errors.js';

/** How many hosts change at once: a count, or a percentage of the hosts deployed (rounded up). */
export type BatchSize = number | `${number}%`;

/** `--batch` as the user wrote it. */
export function parseBatch(v: string): BatchSize {
  if (/^[1-9]\d*$/.test(v)) return Number(v);
  if (/^(?:100|[1-9]\d?)%$/.test(v)) return v as `${number}%`;
  throw new UsageError(
    `--batch takes a number of hosts (1, 2, ...) or a percentage from 1% to 100% (25%), not "${v}"`,
  );
}

/** The hosts in consecutive batches of `size` (at least one host each). */
export function inBatches<T>(hosts: T[], size: BatchSize): T[][] {
  const n =
    typeof size === 'number'
      ? size
      : Math.max(1, Math.ceil((hosts.length * Number(size.slice(0, -1))) / 100));
  const out: T[][] = [];
  for (let i = 0; i < hosts.length; i += n) out.push(hosts.slice(i, i + n));
  return out;
}
