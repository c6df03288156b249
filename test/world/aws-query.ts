/**
 * The shell shared by the local fakes of AWS Query APIs (ec2.ts, elbv2.ts): an HTTP server on a
 * free loopback port that takes form-encoded POSTs (`Action`, `Version`, parameters), records
 * every call, checks the request's SigV4 scope (key, region, service; not the signature's math),
 * answers `failNext` failures, and rejects actions the fake does not play, all before the fake's
 * own handler sees the request. Errors are written in the service's dialect: EC2 has its own
 * envelope (`<Response><Errors><Error>`); the other Query APIs share `<ErrorResponse>`.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One Query API request a fake answered, in order. */
export interface QueryCall {
  action: string;
  /** The form parameters other than Action and Version. */
  params: Record<string, string>;
  status: number;
  /** The error code answered, if any. */
  code?: string;
}

/** Escape text for an XML element. */
export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A fresh request id, as every answer carries one. */
export const requestId = () => randomBytes(8).toString('hex');

/** A test key pair of the shape AWS issues; the fake accepts only its own. */
export const testCredentials = () => ({
  accessKeyId: `AKIAFAKE${randomBytes(6).toString('hex').toUpperCase()}`,
  secretAccessKey: randomBytes(20).toString('base64'),
});

/** How the service writes its answers: EC2's own dialect, or the one the other Query APIs share. */
export type QueryDialect = { kind: 'ec2' } | { kind: 'query'; namespace: string };

const errorXml = (dialect: QueryDialect, status: number, code: string, message: string) =>
  dialect.kind === 'ec2'
    ? `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>${requestId()}</RequestID></Response>\n`
    : `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="${dialect.namespace}">\n  <Error><Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error>\n  <RequestId>${requestId()}</RequestId>\n</ErrorResponse>\n`;

/** A successful answer in the shared Query dialect: `<ActionResponse><ActionResult>…`. */
export const queryResponseXml = (namespace: string, action: string, result: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${namespace}">\n  <${action}Result>${result}</${action}Result>\n  <ResponseMetadata><RequestId>${requestId()}</RequestId></ResponseMetadata>\n</${action}Response>\n`;

/** One request that passed the shell's checks. */
export interface QueryRequest {
  form: URLSearchParams;
  action: string;
  /** Answer `body` (XML) with `status`. */
  send(status: number, body: string): void;
  /** Answer an error `code` with `status`, in the service's dialect; the call records the code. */
  fail(status: number, code: string, message: string): void;
}

export interface QueryApiOptions {
  /** The API version every request must name, e.g. 2016-11-15. */
  version: string;
  /** The SigV4 signing name and region the scope must name. */
  service: string;
  region: string;
  /** The only access key accepted. */
  accessKeyId: string;
  dialect: QueryDialect;
  /** The actions the fake plays; any other is `InvalidAction`. */
  actions: readonly string[];
  /** How the service refuses a request whose signature's scope is missing or wrong. */
  auth: {
    status: number;
    /** No `Credential=` scope in the Authorization header. */
    missing: { code: string; message: string };
    /** A key that is not `accessKeyId`. */
    unknownKey: { code: string; message: string };
    /** The right key for another region or service. */
    wrongScopeCode: string;
  };
  /** Answer a request that passed the checks. */
  handle(request: QueryRequest): void;
}

export interface QueryApi {
  /** http://127.0.0.1:PORT */
  url: string;
  calls: QueryCall[];
  /** The next `n` requests that pass the scope check are answered `code` with `status`. */
  failNext(n: number, status: number, code: string, message: string): void;
  /** Closes the server and its connections; safe to call twice. */
  stop(): Promise<void>;
}

/** Start the shell on a free loopback port; resolves once it listens. */
export async function startQueryApi(opts: QueryApiOptions): Promise<QueryApi> {
  const calls: QueryCall[] = [];
  let failing = { n: 0, status: 0, code: '', message: '' };
  const contentType = opts.dialect.kind === 'ec2' ? 'text/xml;charset=UTF-8' : 'text/xml';

  const server = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      const form = new URLSearchParams(text);
      const action = form.get('Action') ?? '';
      const params: Record<string, string> = {};
      for (const [k, v] of form) if (k !== 'Action' && k !== 'Version') params[k] = v;
      const call: QueryCall = { action, params, status: 0 };
      calls.push(call);
      const send = (status: number, body: string) => {
        call.status = status;
        res.writeHead(status, { 'content-type': contentType });
        res.end(body);
      };
      const fail = (status: number, code: string, message: string) => {
        call.code = code;
        send(status, errorXml(opts.dialect, status, code, message));
      };
      const { auth } = opts;
      const scope = /Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(
        String(req.headers.authorization ?? ''),
      );
      if (req.method !== 'POST' || form.get('Version') !== opts.version)
        return fail(400, 'InvalidAction', `not a ${opts.version} Query API request`);
      if (!scope) return fail(auth.status, auth.missing.code, auth.missing.message);
      if (scope[1] !== opts.accessKeyId)
        return fail(auth.status, auth.unknownKey.code, auth.unknownKey.message);
      if (scope[2] !== opts.region || scope[3] !== opts.service)
        return fail(
          auth.status,
          auth.wrongScopeCode,
          `Credential should be scoped to a valid region and service ${opts.service}, not ${scope[2]}/${scope[3]}`,
        );
      if (failing.n > 0) {
        failing.n--;
        return fail(failing.status, failing.code, failing.message);
      }
      if (!opts.actions.includes(action))
        return fail(400, 'InvalidAction', `The action ${action} is not valid for this web service.`);
      opts.handle({ form, action, send, fail });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  let stopped: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    failNext(n, status, code, message) {
      failing = { n, status, code, message };
    },
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      })),
  };
}
