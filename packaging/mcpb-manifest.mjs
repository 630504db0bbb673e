// Writes the MCP Bundle manifest for keybridge-mcp to stdout.
//   node packaging/mcpb-manifest.mjs VERSION CATALOG_JSON PLATFORM...
// The tools are Keybridge's own catalog (`keybridge catalog --json`), so the bundle lists exactly
// what the bridge serves. The bundle holds no secret: its one setting is which paired client the
// bridge speaks for, and Keybridge asks the trader to approve the first connection.
import { readFileSync } from "node:fs";

const [version, catalogPath, ...platforms] = process.argv.slice(2);
if (!version || !catalogPath || platforms.length === 0) {
  console.error("usage: node packaging/mcpb-manifest.mjs VERSION CATALOG_JSON PLATFORM...");
  process.exit(2);
}
const catalog = JSON.parse(readFileSync(catalogPath, "utf8"));
const firstSentence = (text) => (text.match(/^.*?[.!?](\s|$)/)?.[0] ?? text).trim();

const manifest = {
  manifest_version: "0.3",
  name: "keybridge",
  display_name: "Keybridge for QuantConnect",
  version,
  description: "Use your QuantConnect account from Claude while the API token stays in your OS keychain.",
  long_description:
    "Keybridge's MCP server. It holds no secret: the Keybridge app keeps your QuantConnect API token in the OS keychain, " +
    "checks every call against what you allowed this client, asks you before anything that trades live or deletes, " +
    "and records every call in a tamper-evident log. Install the Keybridge app first and pair a client in it; " +
    "the first time Claude connects, Keybridge asks you to approve it.",
  author: { name: "The Keybridge authors" },
  license: "MIT",
  icon: "icon.png",
  server: {
    type: "binary",
    entry_point: "server/keybridge-mcp",
    mcp_config: {
      command: "${__dirname}/server/keybridge-mcp",
      args: ["--client", "${user_config.client}"],
      platform_overrides: { win32: { command: "${__dirname}/server/keybridge-mcp.exe" } },
    },
  },
  tools: [
    ...catalog.map((tool) => ({ name: tool.name, description: firstSentence(tool.description) })),
    { name: "keybridge_status", description: "Whether Keybridge is reachable, and what this client may do." },
  ],
  keywords: ["quantconnect", "trading", "backtesting", "keychain"],
  compatibility: { claude_desktop: ">=0.10.0", platforms },
  user_config: {
    client: {
      type: "string",
      title: "Keybridge client",
      description: "The client id the Keybridge app shows for Claude (Clients view, or `keybridge client list`). Not a secret.",
      required: true,
    },
  },
};
process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
