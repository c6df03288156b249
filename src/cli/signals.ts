/**
 * SIGINT and SIGTERM ask the work to stop at its next safe point (an AbortSignal the pipeline
 * honours); a second one ends the process at once, as a person pressing Ctrl-C twice expects.
 * What a hard stop leaves behind is what a crash leaves, and the next apply puts it right.
 */
export function cancelOnSignals(onFirst?: (signal: NodeJS.Signals) => void): {
  signal: AbortSignal;
  dispose(): void;
} {
  const controller = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130);
    onFirst?.(sig);
    controller.abort(new Error(`${sig}`));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
