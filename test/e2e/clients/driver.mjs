// driver.mjs runs one MCP client of the TypeScript SDK
// (@modelcontextprotocol/sdk) against a server, as a JSON plan says, and
// prints what happens as JSON lines, so that the Go end-to-end tests can
// make the assertions.
//
//   node clients/driver.mjs [PLAN]      (run from test/e2e)
//
// The plan is a JSON object, given as the first argument or as the first
// line of stdin:
//
//   {
//     "transport": "sse" | "streamable",
//     "url": "http://127.0.0.1:PORT/sse",    // or .../mcp
//     "token": "TOKEN",                      // optional
//     "tokenIn": "header" | "query",         // where the token goes (header)
//     "headers": {"X-Name": "value"},        // optional, on every request
//     "name": "client-a",                    // clientInfo.name (driver)
//     "ops": [OP, ...]                       // run one after the other
//   }
//
// With "query" the token is added to the URL as ?token=: for streamable
// HTTP the SDK sends it on every request; for legacy SSE only on GET /sse,
// since the SDK builds the POST URL from the endpoint event.
//
// After the plan, every further line of stdin is one OP, started at once
// (so several run concurrently). At the end of stdin the driver waits for
// every OP, closes the client and exits 0.
//
// An OP is {"id": "...", "op": NAME, ...}; NAME and its fields:
//
//   listTools, listPrompts, listResources, listResourceTemplates
//                      every page: the result holds all items and "pages"
//   callTool           name, arguments, progress (ask for progress), timeoutMs
//   getPrompt          name, arguments
//   readResource       uri
//   subscribe          uri
//   unsubscribe        uri
//   ping
//   close              close the client now (later OPs fail)
//
// and, optionally, "expect": {"ok": BOOL, "code": N, "text": "..."}: the
// result line then carries "unexpected" with the reason when the outcome
// differs (text is looked for in the JSON of the result or the error).
//
// Output lines (one JSON object each):
//
//   {"event":"connected","sessionId":...,"protocolVersion":...,"serverInfo":...,"capabilities":...}
//   {"event":"fatal","message":...,"code":...}       connect failed; exit 2
//   {"event":"result","id":...,"op":...,"ok":true,"result":...,"ms":...}
//   {"event":"result","id":...,"op":...,"ok":false,"error":{"code":...,"message":...,"data":...},"ms":...}
//   {"event":"progress","id":...,"progress":...,"total":...}
//   {"event":"notification","method":...,"params":...}
//   {"event":"transportError","message":...}
//   {"event":"closed"}

import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function errorObject(err) {
  return {
    code: typeof err?.code === 'number' ? err.code : undefined,
    message: String(err?.message ?? err),
    data: err?.data,
    name: err?.name,
  };
}

function makeTransport(plan) {
  const url = new URL(plan.url);
  const headers = { ...(plan.headers ?? {}) };
  if (plan.token) {
    if (plan.tokenIn === 'query') {
      url.searchParams.set('token', plan.token);
    } else {
      headers.Authorization = `Bearer ${plan.token}`;
    }
  }
  const requestInit = { headers };
  switch (plan.transport) {
    case 'sse':
      return new SSEClientTransport(url, { requestInit });
    case 'streamable':
      // No reconnection attempts: a broken stream is an error the test sees.
      return new StreamableHTTPClientTransport(url, {
        requestInit,
        reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 },
      });
  }
  throw new Error(`unknown transport ${JSON.stringify(plan.transport)}`);
}

// sessionIdOf returns the session id a transport uses: the Mcp-Session-Id
// of streamable HTTP, the sessionId query parameter of the legacy endpoint.
function sessionIdOf(transport) {
  if (transport instanceof StreamableHTTPClientTransport) {
    return transport.sessionId;
  }
  return transport._endpoint?.searchParams.get('sessionId') ?? undefined;
}

const listKeys = {
  listTools: ['listTools', 'tools'],
  listPrompts: ['listPrompts', 'prompts'],
  listResources: ['listResources', 'resources'],
  listResourceTemplates: ['listResourceTemplates', 'resourceTemplates'],
};

async function runOp(client, op) {
  const opts = { timeout: op.timeoutMs ?? 60000 };
  if (listKeys[op.op]) {
    const [method, key] = listKeys[op.op];
    const items = [];
    let cursor;
    let pages = 0;
    do {
      const res = await client[method](cursor ? { cursor } : {}, opts);
      items.push(...res[key]);
      cursor = res.nextCursor;
      pages++;
    } while (cursor && pages < 100);
    return { [key]: items, pages };
  }
  switch (op.op) {
    case 'callTool':
      if (op.progress) {
        opts.onprogress = (p) => emit({ event: 'progress', id: op.id, ...p });
        opts.resetTimeoutOnProgress = true;
      }
      return await client.callTool({ name: op.name, arguments: op.arguments ?? {} }, undefined, opts);
    case 'getPrompt':
      return await client.getPrompt({ name: op.name, arguments: op.arguments ?? {} }, opts);
    case 'readResource':
      return await client.readResource({ uri: op.uri }, opts);
    case 'subscribe':
      return await client.subscribeResource({ uri: op.uri }, opts);
    case 'unsubscribe':
      return await client.unsubscribeResource({ uri: op.uri }, opts);
    case 'ping':
      return await client.ping(opts);
    case 'close':
      await client.close();
      return {};
  }
  throw new Error(`unknown op ${JSON.stringify(op.op)}`);
}

function check(expect, line) {
  if (!expect) return undefined;
  if (expect.ok !== undefined && expect.ok !== line.ok) {
    return `want ok=${expect.ok}, got ok=${line.ok}`;
  }
  if (expect.code !== undefined && line.error?.code !== expect.code) {
    return `want error code ${expect.code}, got ${line.error?.code}`;
  }
  if (expect.text !== undefined && !JSON.stringify(line.ok ? line.result : line.error).includes(expect.text)) {
    return `want ${JSON.stringify(expect.text)} in the outcome`;
  }
  return undefined;
}

async function run(client, op) {
  const start = Date.now();
  const line = { event: 'result', id: op.id, op: op.op };
  try {
    line.result = await runOp(client, op);
    line.ok = true;
  } catch (err) {
    line.ok = false;
    line.error = errorObject(err);
  }
  line.ms = Date.now() - start;
  const unexpected = check(op.expect, line);
  if (unexpected) line.unexpected = unexpected;
  emit(line);
}

async function main() {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const lines = rl[Symbol.asyncIterator]();
  let planText = process.argv[2];
  if (planText === undefined) {
    const first = await lines.next();
    if (first.done) throw new Error('no plan: give it as the first argument or the first line of stdin');
    planText = first.value;
  }
  const plan = JSON.parse(planText);

  const client = new Client({ name: plan.name ?? 'atrax-e2e-driver', version: '1.0.0' }, { capabilities: {} });
  client.fallbackNotificationHandler = async (n) => emit({ event: 'notification', method: n.method, params: n.params });
  const transport = makeTransport(plan);
  client.onerror = (err) => emit({ event: 'transportError', message: String(err?.message ?? err) });
  try {
    await client.connect(transport);
  } catch (err) {
    emit({ event: 'fatal', ...errorObject(err) });
    process.exit(2);
  }
  emit({
    event: 'connected',
    sessionId: sessionIdOf(transport),
    protocolVersion: transport.protocolVersion ?? transport._protocolVersion,
    serverInfo: client.getServerVersion(),
    capabilities: client.getServerCapabilities(),
  });

  for (const op of plan.ops ?? []) {
    await run(client, op);
  }
  const pending = [];
  for (;;) {
    const next = await lines.next();
    if (next.done) break;
    if (next.value.trim() === '') continue;
    let op;
    try {
      op = JSON.parse(next.value);
    } catch (err) {
      emit({ event: 'result', ok: false, error: errorObject(err) });
      continue;
    }
    pending.push(run(client, op));
  }
  await Promise.allSettled(pending);
  await client.close().catch(() => {});
  emit({ event: 'closed' });
  process.exit(0);
}

main().catch((err) => {
  emit({ event: 'fatal', ...errorObject(err) });
  process.exit(2);
});
