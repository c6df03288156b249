import type { Plan } from '../model/plan.js';

/**
 * The plan as people read it, one line per operation with its cause. Unit tests compare this
 * text, so it is the plan's own contract, not a rendering detail.
 */
export function planText(plan: Plan): string {
  const head = `Plan for ${plan.host ? `host ${plan.host}` : 'this host'} at ${plan.ref}${
    plan.commit ? ` (${plan.commit.slice(0, 12)})` : ''
  }`;
  const rows: string[][] = [];
  const host = plan.host ?? 'this host';
  for (const p of plan.pulls) rows.push([p.services.join(','), 'pull', `${p.image} (${p.cause})`]);
  if (plan.rotation?.lease) rows.push([host, 'lease', plan.rotation.lease.cause]);
  if (plan.rotation?.drain) rows.push([host, 'drain', plan.rotation.drain.cause]);
  for (const op of plan.operations) {
    const what = op.kind === 'write-env' || op.kind === 'remove-env' ? `${op.path} (${op.cause})` : op.cause;
    rows.push([op.service, op.kind, what]);
  }
  if (plan.rotation?.rejoin) rows.push([host, plan.rotation.rejoin.kind, plan.rotation.rejoin.cause]);
  for (const h of plan.held) rows.push([h.service, 'held', h.reason]);
  const out = [head];
  const w0 = Math.max(0, ...rows.map((r) => r[0]!.length));
  const w1 = Math.max(0, ...rows.map((r) => r[1]!.length));
  for (const r of rows) out.push(`  ${r[0]!.padEnd(w0)}  ${r[1]!.padEnd(w1)}  ${r[2]}`);
  for (const w of plan.warnings) out.push(`warning: ${w}`);
  for (const b of plan.blockers) out.push(`blocked: ${b}`);
  out.push(summary(plan));
  return out.join('\n') + '\n';
}

export function summary(plan: Plan): string {
  const counts = new Map<string, number>();
  for (const op of plan.operations) {
    if (op.kind === 'write-env' || op.kind === 'remove-env') continue;
    counts.set(op.kind, (counts.get(op.kind) ?? 0) + 1);
  }
  const order = ['recover', 'remove-aside', 'create', 'recreate', 'adopt', 'start', 'unpause', 'remove'];
  const parts = order.filter((k) => counts.has(k)).map((k) => `${counts.get(k)} to ${k}`);
  const envWrites = plan.operations.filter((o) => o.kind === 'write-env').length;
  if (envWrites) parts.push(`${envWrites} env file${envWrites === 1 ? '' : 's'} to write`);
  const envRemoves = plan.operations.filter((o) => o.kind === 'remove-env').length;
  if (envRemoves) parts.push(`${envRemoves} env file${envRemoves === 1 ? '' : 's'} to remove`);
  if (plan.rotation?.drain) parts.push('the host leaves rotation meanwhile');
  else if (plan.rotation?.rejoin) parts.push(`the host goes back into rotation`);
  const unchanged = `${plan.unchanged.length} unchanged${plan.held.length ? `, ${plan.held.length} held` : ''}`;
  if (parts.length === 0) return `No changes. ${unchanged}.`;
  return `${parts.join(', ')}; ${unchanged}.`;
}
