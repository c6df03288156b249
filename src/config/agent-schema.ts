import * as z from 'zod';
import type { AgentSettings } from '../model/agent-settings.js';
import { line, nonEmptyLine } from './schema-parts.js';

/** An environment variable's name, as the agent reads tokens and secret URLs from one. */
const envVarName = () =>
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
    error: (iss) => `${JSON.stringify(iss.input)} is not an environment variable name`,
  });

/** A plain http(s) URL: the agent block is not templated. */
const plainUrl = () =>
  line().refine((s) => /^https?:\/\/./.test(s) && URL.canParse(s), {
    error: (iss) => `${JSON.stringify(iss.input)} is not an http:// or https:// URL`,
  });

/** berth.yaml `agent`: how `berth agent` reports back. */
export const agentSchema = z
  .strictObject({
    commit_status: z
      .strictObject({
        platform: z.enum(['github', 'gitlab', 'gitea']).describe('Where the state repo is hosted.'),
        project: nonEmptyLine()
          .optional()
          .describe("owner/name (GitLab: full path); default: from the repo's URL."),
        api_url: plainUrl().optional().describe("The platform's API root; default: from the repo's host."),
        token_env: envVarName()
          .optional()
          .describe('Variable holding the token (default GITHUB_TOKEN, GITLAB_TOKEN or GITEA_TOKEN).'),
        target_url: plainUrl().optional().describe('A link each status carries, such as a dashboard.'),
      })
      .optional()
      .describe('A commit status `berth/<host>` (pending, success, failure) on each new commit.'),
    notify: z
      .array(
        z
          .strictObject({
            url: plainUrl().optional().describe('Where to POST, when the URL is not a secret.'),
            url_env: envVarName().optional().describe('Variable holding the URL, when it is a secret.'),
            on: z
              .array(z.enum(['success', 'failure']))
              .min(1)
              .optional()
              .describe('Outcomes to send (default both).'),
          })
          .refine((n) => (n.url === undefined) !== (n.url_env === undefined), {
            error: 'give exactly one of url and url_env',
          }),
      )
      .optional()
      .describe(
        'JSON POSTs (Slack-compatible `text`) after each new commit; a failing one never fails a deploy.',
      ),
  })
  .describe('How `berth agent` reports what it did with each new commit.');

/** The `agent` block as the model keeps it. */
export function toAgentSettings(a: z.output<typeof agentSchema>): AgentSettings {
  const out: AgentSettings = {
    notify: (a.notify ?? []).map((n) => {
      const o: AgentSettings['notify'][number] = { on: n.on ?? ['success', 'failure'] };
      if (n.url !== undefined) o.url = n.url;
      if (n.url_env !== undefined) o.urlEnv = n.url_env;
      return o;
    }),
  };
  const cs = a.commit_status;
  if (cs) {
    out.commitStatus = { platform: cs.platform };
    if (cs.project !== undefined) out.commitStatus.project = cs.project;
    if (cs.api_url !== undefined) out.commitStatus.apiUrl = cs.api_url;
    if (cs.token_env !== undefined) out.commitStatus.tokenEnv = cs.token_env;
    if (cs.target_url !== undefined) out.commitStatus.targetUrl = cs.target_url;
  }
  return out;
}
