/** Everything berth asks of a container at creation, already in engine terms. */
export interface ContainerCreateSpec {
  name: string;
  image: string;
  /** KEY=value pairs. */
  env: string[];
  cmd?: string[];
  entrypoint?: string[];
  user?: string;
  workingDir?: string;
  labels: Record<string, string>;
  stopSignal?: string;
  stopTimeout?: number;
  networkMode: string;
  restartPolicy: { name: string; maximumRetryCount?: number };
  init: boolean;
  logDriver?: string;
  logOptions: Record<string, string>;
  /** Docker bind / volume strings: SRC:DST[:MODE]. */
  binds: string[];
  /** Single files bind-mounted read-only (`files:`): the host file must exist, it is never made as a folder. */
  fileMounts?: Array<{ source: string; target: string }>;
}
