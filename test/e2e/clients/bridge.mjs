// bridge.mjs is a session-era client (streamable HTTP, the TypeScript SDK)
// that declares elicitation and answers every elicitation request, then
// calls one tool and prints the result and what it was asked, as one JSON
// line. The Go test puts a stateless server behind the edge, whose tool
// answers input_required: the edge must turn that into real requests.
//
//   node clients/bridge.mjs URL TOKEN TOOL NAME
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const [url, token, tool, name] = process.argv.slice(2);
const asked = [];
const client = new Client({ name: "bridge-e2e", version: "1.0.0" }, { capabilities: { elicitation: {} } });
client.setRequestHandler(ElicitRequestSchema, async (req) => {
  asked.push(req.params.message ?? "");
  return { action: "accept", content: { name } };
});
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
try {
  await client.connect(transport);
  const result = await client.callTool({ name: tool, arguments: {} }, undefined, { timeout: 30000 });
  console.log(JSON.stringify({ result, asked, protocolVersion: transport.protocolVersion }));
  await client.close();
} catch (err) {
  console.log(JSON.stringify({ error: String(err?.message ?? err), asked }));
  process.exitCode = 1;
}
