import { describe, expect, it } from "vitest";
import type { ApprovalView } from "./bindings";
import { approveVerb, friendlyTool, headline, isLiveMoney, risk } from "./tools";

function approval(over: Partial<ApprovalView> = {}): ApprovalView {
  return {
    id: "a-1", kind: "tool_call", client_id: "c1", client_name: "Claude Desktop", session_id: "s-1", account: "main", tool: "read_project",
    scope: "qc:projects:read", summary: "", arguments: {}, arguments_digest: "00", created: 0, expires: 0, ...over,
  };
}

describe("tool names", () => {
  it("spells identifiers out, with better words where the identifier reads badly", () => {
    expect(friendlyTool("stop_live_algorithm")).toBe("Stop live algorithm");
    expect(friendlyTool("create_backtest")).toBe("Run backtest");
    expect(friendlyTool("search_quantconnect")).toBe("Search QuantConnect");
    expect(friendlyTool("")).toBe("");
  });
});

describe("risk", () => {
  it("counts every live scope but reading as live money, by scope or by name", () => {
    expect(isLiveMoney({ tool: "create_live_algorithm", scope: "qc:live:write" })).toBe(true);
    expect(isLiveMoney({ tool: "liquidate_live_algorithm", scope: "qc:live:execute" })).toBe(true);
    expect(isLiveMoney({ tool: "some_future_tool", scope: "qc:live:delete" })).toBe(true);
    expect(isLiveMoney({ tool: "broadcast_live_command", scope: null })).toBe(true);
    expect(isLiveMoney({ tool: "authorize_connection", scope: "qc:unknown" })).toBe(true);
    expect(isLiveMoney({ tool: "read_live_portfolio", scope: "qc:live:read" })).toBe(false);
    expect(isLiveMoney({ tool: "list_live_algorithms", scope: null })).toBe(false);
    expect(isLiveMoney({ tool: "delete_project", scope: "qc:projects:delete" })).toBe(false);
  });

  it("ranks a request: live, delete, a new connection, or another change", () => {
    expect(risk(approval({ tool: "stop_live_algorithm", scope: "qc:live:execute" }))).toBe("live");
    expect(risk(approval({ tool: "delete_object", scope: "qc:objects:delete" }))).toBe("delete");
    expect(risk(approval({ kind: "pairing", tool: null, scope: null }))).toBe("connect");
    expect(risk(approval({ tool: "update_file_contents", scope: "qc:files:write" }))).toBe("change");
  });
});

describe("the approve button and the headline", () => {
  it("name the action, with Allow when there is no better verb", () => {
    expect(approveVerb(approval({ tool: "liquidate_live_algorithm" }))).toBe("Liquidate");
    expect(approveVerb(approval({ tool: "delete_optimization" }))).toBe("Delete optimization");
    expect(approveVerb(approval({ kind: "pairing", tool: null }))).toBe("Allow connection");
    expect(approveVerb(approval({ tool: "create_compile" }))).toBe("Allow");
  });

  it("say paper only when the brokerage is QuantConnect's paper trading, as the broker does", () => {
    const deploy = (brokerage: unknown) => headline(approval({ tool: "create_live_algorithm", arguments: { projectId: 5, brokerage } }));
    expect(deploy({ id: "QuantConnectBrokerage" })).toBe("Deploy project 5 to paper trading");
    expect(deploy({ id: "InteractiveBrokersBrokerage", "ib-trading-mode": "paper" })).toBe("Deploy project 5 to live trading with “InteractiveBrokersBrokerage”");
    expect(deploy(undefined)).toBe("Deploy project 5 to live trading");
  });

  it("quote what the client chose and cut it short", () => {
    const line = headline(approval({ tool: "delete_file", arguments: { projectId: 5, name: `${"x".repeat(100)}.py` } }));
    expect(line).toMatch(/^Delete file “x{59}…” from project 5$/);
    expect(headline(approval({ tool: "read_backtest", arguments: { projectId: 5 } }))).toBe("Read backtest of project 5");
    expect(headline(approval({ kind: "pairing", tool: null }))).toBe("Claude Desktop connects to account main for the first time");
  });
});
