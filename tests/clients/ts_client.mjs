// A third-party MCP client (the official TypeScript SDK 2.x) driving keybridge-mcp over stdio,
// or a team broker over Streamable HTTP when SERVER is a URL (with KB_BEARER as its access token).
// Usage: node ts_client.mjs SERVER [ARGS...]; KB_STEPS as for mcp_client.py; KB_MODE "auto"
// (server/discover from a disposable sibling process, as Claude Desktop probes) or "legacy".
// Prints one JSON object: protocol, server name, tools, and a result per step.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";

const [command, ...args] = process.argv.slice(2);
const steps = JSON.parse(process.env.KB_STEPS ?? "[]");
const mode = process.env.KB_MODE ?? "auto";

const client = new Client(
  { name: "keybridge-e2e-ts", version: "1.0.0" },
  { versionNegotiation: { mode } },
);
const transport = command.startsWith("http")
  ? new StreamableHTTPClientTransport(new URL(command), {
      requestInit: { headers: { Authorization: `Bearer ${process.env.KB_BEARER}` } },
    })
  : new StdioClientTransport({ command, args, env: process.env, stderr: "inherit" });
await client.connect(transport);

const tools = await client.listTools();
const out = {
  sdk: "ts2",
  protocol: client.getNegotiatedProtocolVersion(),
  server: client.getServerVersion()?.name,
  tools: tools.tools.map((t) => t.name),
  steps: [],
};
for (const step of steps) {
  if (step[0] === "sleep") {
    await new Promise((done) => setTimeout(done, step[1] * 1000));
  } else if (step[0] === "list") {
    const listed = await client.listTools(undefined, { cacheMode: "refresh" });
    out.steps.push({ tools: listed.tools.map((t) => t.name) });
  } else {
    try {
      const result = await client.callTool({ name: step[1], arguments: step[2] });
      out.steps.push({
        tool: step[1],
        isError: Boolean(result.isError),
        text: result.content.filter((c) => c.type === "text").map((c) => c.text).join(""),
        structured: result.structuredContent ?? null,
      });
    } catch (error) {
      // Refused before it reached the server's tools (an HTTP 403, say).
      out.steps.push({ tool: step[1], refused: String(error?.message ?? error) });
    }
  }
}
console.log(JSON.stringify(out));
await client.close();
