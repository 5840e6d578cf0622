// connect_client.mjs launches a stdio MCP server with the TypeScript SDK's
// stdio client (@modelcontextprotocol/sdk, StdioClientTransport), as Claude
// Desktop and the like do, and runs operations on it, so that the Go
// end-to-end tests can drive `atrax connect` as such a client would.
//
//   node clients/connect_client.mjs PLAN      (run from test/e2e)
//
// PLAN is a JSON object:
//
//   {"command": "/path/to/atrax", "args": ["connect", URL, "--token", T], "env": {...}}
//
// Each line of stdin is then one operation, run after the one before:
//
//   {"id": "1", "op": "listTools"}
//   {"id": "2", "op": "callTool", "name": "everything__echo", "arguments": {...}}
//   {"id": "3", "op": "ping"}
//   {"id": "4", "op": "close"}          close the client (ends the server)
//
// Output lines (one JSON object each):
//
//   {"event":"connected","serverInfo":...,"capabilities":...}
//   {"event":"fatal","message":...,"code":...}        connecting failed; exit 2
//   {"event":"result","id":...,"op":...,"ok":true,"result":...}
//   {"event":"result","id":...,"op":...,"ok":false,"error":{"code":...,"message":...}}
//   {"event":"stderr","line":...}                     the server's log lines
//   {"event":"notification","method":...}
//   {"event":"closed"}

import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function errorObject(err) {
  return {
    code: typeof err?.code === 'number' ? err.code : undefined,
    message: String(err?.message ?? err),
  };
}

const plan = JSON.parse(process.argv[2]);
const transport = new StdioClientTransport({
  command: plan.command,
  args: plan.args ?? [],
  env: plan.env ?? {},
  stderr: 'pipe',
});
createInterface({ input: transport.stderr }).on('line', (line) => emit({ event: 'stderr', line }));

const client = new Client({ name: 'connect-e2e', version: '1.0.0' }, { capabilities: {} });
client.fallbackNotificationHandler = async (n) => emit({ event: 'notification', method: n.method });
client.onclose = () => emit({ event: 'closed' });

try {
  await client.connect(transport);
} catch (err) {
  emit({ event: 'fatal', ...errorObject(err) });
  await transport.close().catch(() => {});
  process.exit(2);
}
emit({ event: 'connected', serverInfo: client.getServerVersion(), capabilities: client.getServerCapabilities() });

const ops = {
  listTools: () => client.listTools(),
  callTool: (op) => client.callTool({ name: op.name, arguments: op.arguments ?? {} }),
  ping: () => client.ping(),
};

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const op = JSON.parse(line);
  if (op.op === 'close') {
    await client.close();
    emit({ event: 'result', id: op.id, op: 'close', ok: true });
    break;
  }
  try {
    const result = await ops[op.op](op);
    emit({ event: 'result', id: op.id, op: op.op, ok: true, result });
  } catch (err) {
    emit({ event: 'result', id: op.id, op: op.op, ok: false, error: errorObject(err) });
  }
}
process.exit(0);
