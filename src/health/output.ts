// Text for the record: short, one line, never a whole page.

/** How much of an answer the record keeps. */
const OUTPUT_MAX = 200;

/** One line, at most OUTPUT_MAX characters: the record shows it as is. */
export function shortOutput(text: string): string {
  // eslint-disable-next-line no-control-regex
  const line = text.replace(/[\u0000-\u001f\u007f\s]+/g, ' ').trim();
  return line.length > OUTPUT_MAX ? `${line.slice(0, OUTPUT_MAX - 1)}…` : line;
}

/** Why a container that is not running stopped, in the words the record shows. */
export function notRunningText(state: { exitCode?: number; status?: string }): string {
  const code = state.exitCode === undefined ? '' : ` with code ${state.exitCode}`;
  if (state.status === undefined || state.status === 'exited') return `container exited${code}`;
  return `container is ${state.status}${state.exitCode === undefined ? '' : ` (exit code ${state.exitCode})`}`;
}
