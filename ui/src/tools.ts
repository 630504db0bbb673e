// What the window says about a tool: its name in words, how risky it is, the verb on the button
// that lets it run, and a one-line headline of what a call will do. Only from what an approval
// already carries (tool, scope, arguments): the broker stays the one that decides.
import type { ApprovalView } from "./bindings";

// Names that read badly when spelled out from the identifier; the rest are spelled out.
const NAMES: Record<string, string> = {
  create_compile: "Compile project",
  read_compile: "Read compile result",
  create_backtest: "Run backtest",
  create_optimization: "Run optimization",
  create_live_algorithm: "Deploy live algorithm",
  liquidate_live_algorithm: "Liquidate live algorithm",
  create_live_command: "Send live command",
  broadcast_live_command: "Broadcast live command",
  authorize_connection: "Authorize brokerage",
  upload_object: "Upload to object store",
  delete_object: "Delete from object store",
  search_quantconnect: "Search QuantConnect",
  read_mcp_server_version: "Read MCP server version",
  read_latest_mcp_server_version: "Read latest MCP server version",
  keybridge_status: "Keybridge status",
};

/** `stop_live_algorithm` reads as "Stop live algorithm"; an empty name stays empty. */
export function friendlyTool(tool: string): string {
  if (!tool) return "";
  const known = NAMES[tool];
  if (known) return known;
  const words = tool.replace(/_/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export type Risk = "live" | "delete" | "connect" | "change";

// Live tools by name as well as by scope: if a future broker sends a live tool under a scope this
// window does not know, it still counts as live money here.
const LIVE_TOOLS = new Set([
  "authorize_connection",
  "create_live_algorithm",
  "stop_live_algorithm",
  "liquidate_live_algorithm",
  "create_live_command",
  "broadcast_live_command",
  "update_project_nodes",
]);

/** Whether the call can move real money or command a live algorithm: every live scope but reads. */
export function isLiveMoney(approval: Pick<ApprovalView, "tool" | "scope">): boolean {
  const scope = approval.scope ?? "";
  const tool = approval.tool ?? "";
  if (scope.startsWith("qc:live:") && scope !== "qc:live:read") return true;
  if (LIVE_TOOLS.has(tool)) return true;
  return /(^|_)live(_|$)/.test(tool) && !/^(read|list)_/.test(tool);
}

export function risk(approval: Pick<ApprovalView, "kind" | "tool" | "scope">): Risk {
  if (approval.kind === "pairing") return "connect";
  if (isLiveMoney(approval)) return "live";
  if ((approval.scope ?? "").endsWith(":delete") || (approval.tool ?? "").startsWith("delete_")) return "delete";
  return "change";
}

/** The short label of the risk, for the card's badge. */
export const RISK_LABEL: Record<Risk, string> = {
  live: "Live trading",
  delete: "Deletes · can't be undone",
  connect: "New connection",
  change: "Changes your account",
};

const VERBS: Record<string, string> = {
  create_live_algorithm: "Deploy live",
  stop_live_algorithm: "Stop live algorithm",
  liquidate_live_algorithm: "Liquidate",
  create_live_command: "Send command",
  broadcast_live_command: "Broadcast command",
  authorize_connection: "Authorize brokerage",
  update_project_nodes: "Change live nodes",
  delete_project_collaborator: "Remove collaborator",
  delete_object: "Delete object",
};

/** The approve button's words: what pressing it lets happen. */
export function approveVerb(approval: Pick<ApprovalView, "kind" | "tool">): string {
  if (approval.kind === "pairing") return "Allow connection";
  const tool = approval.tool ?? "";
  if (VERBS[tool]) return VERBS[tool];
  if (tool.startsWith("delete_")) return friendlyTool(tool);
  return "Allow";
}

function arg(args: unknown, key: string): unknown {
  return typeof args === "object" && args !== null && !Array.isArray(args) ? (args as Record<string, unknown>)[key] : undefined;
}

function text(value: unknown): string | null {
  return typeof value === "string" && value ? value : typeof value === "number" ? String(value) : null;
}

// Arguments come from the client: shown as quoted data, cut short, never as part of the sentence.
function quoted(value: string): string {
  return `“${value.length > 60 ? `${value.slice(0, 59)}…` : value}”`;
}

/** One line, in a trader's words, of what approving will make happen. */
export function headline(approval: ApprovalView): string {
  if (approval.kind === "pairing") return `${approval.client_name} connects to account ${approval.account} for the first time`;
  const args = approval.arguments;
  const project = text(arg(args, "projectId"));
  const ofProject = project ? ` of project ${project}` : "";
  const brokerage = text(arg(arg(args, "brokerage"), "id")) ?? text(arg(args, "brokerage"));
  switch (approval.tool) {
    case "create_live_algorithm":
      // The same test as the broker's: QuantConnect's own brokerage is its paper trading.
      if (brokerage === "QuantConnectBrokerage") return `Deploy project ${project ?? "?"} to paper trading`;
      return `Deploy project ${project ?? "?"} to live trading${brokerage ? ` with ${quoted(brokerage)}` : ""}`;
    case "stop_live_algorithm":
      return `Stop the live algorithm${ofProject}; open positions stay open`;
    case "liquidate_live_algorithm":
      return `Sell every position${ofProject} at market, then stop it`;
    case "create_live_command":
      return `Send a command to the live algorithm${ofProject}; it can place orders`;
    case "broadcast_live_command":
      return "Send a command to every live algorithm of the organization; it can place orders";
    case "authorize_connection":
      return `Authorize ${brokerage ? quoted(brokerage) : "a brokerage"} for live trading`;
    case "delete_project":
      return `Delete project ${project ?? "?"} with its files and backtests`;
    case "delete_file": {
      const name = text(arg(args, "name"));
      return `Delete ${name ? `file ${quoted(name)}` : "a file"}${project ? ` from project ${project}` : ""}`;
    }
    case "delete_backtest": {
      const id = text(arg(args, "backtestId"));
      return `Delete ${id ? `backtest ${quoted(id)}` : "a backtest"}${ofProject}`;
    }
    default:
      return `${friendlyTool(approval.tool ?? "") || "Run a tool"}${ofProject}`;
  }
}
