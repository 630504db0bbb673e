import axe from "axe-core";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AccountView, AppInfo, ApprovalView, AuditRecordView, ClientView, PresetInfo, ScopeInfo } from "./bindings";

vi.mock("./ipc", () => ({
  api: {},
  onBrokerEvent: vi.fn(async () => () => undefined),
  onShowView: vi.fn(async () => () => undefined),
}));

const { mount } = await import("./main");
const { accountsView } = await import("./views/accounts");
const { activityView } = await import("./views/activity");
const { approvalsView } = await import("./views/approvals");
const { clientsView } = await import("./views/clients");
const { onboardingView } = await import("./views/onboarding");
const { settingsView } = await import("./views/settings");

// The fixtures of the views' own tests, so each view is checked in the state those tests know.
const now = Date.now();
const info: AppInfo = { version: "0.3.1", demo: true, problem: null, data_dir: "/d", socket: "/s", quantconnect: "https://qc", bridge: "/b" };
const account: AccountView = { id: "main", user_id: "123456", organization_id: null, created: 0 };
const presets: PresetInfo[] = [
  { name: "read-only", title: "Read-Only", description: "Look at everything, change nothing.", scopes: ["qc:projects:read"] },
  { name: "research", title: "Research", description: "Write and backtest code; no live trading.", scopes: ["qc:projects:read", "qc:backtests:write"] },
  { name: "trader", title: "Trader", description: "Research, plus deploy, stop and command live algorithms.", scopes: ["qc:live:write", "qc:live:execute"] },
];
const scopes: ScopeInfo[] = [
  { name: "qc:live:read", description: "See live algorithms", default_policy: "allow", tools: ["read_live_algorithm"] },
  { name: "qc:live:execute", description: "Run and command live algorithms", default_policy: "ask", tools: ["stop_live_algorithm"] },
];
const client: ClientView = {
  client_id: "claude-desktop-1a2b", name: "Claude Desktop", account: "main", preset: "research", scopes: ["qc:projects:read"], policy: {},
  token_ttl_secs: 900, mode: "host", approved_hosts: [], revoked: false, created: 0, last_seen: null,
  sessions: [{ session_id: "s-1", host: "/usr/bin/claude-desktop", started: now / 1000 - 60 }],
  limits: { calls_per_minute: 120, live_deployments_per_day: 10, calls_in_flight: 16 },
};
const records: AuditRecordView[] = [
  { seq: 1, ts: now - 5000, event: { kind: "authentication", client: "c1", ok: true, host: "/usr/bin/claude-desktop" } },
  { seq: 2, ts: now - 4000, event: { kind: "tool_call", client: "c1", tool: "read_project", scope: "qc:projects:read", decision: "allowed", outcome: "ok" } },
  { seq: 3, ts: now - 3000, event: { kind: "tool_call", client: "c1", tool: "stop_live_algorithm", scope: "qc:live:execute", decision: "denied", outcome: "approval_denied", error: "you denied this call in Keybridge" } },
];

function approval(over: Partial<ApprovalView> = {}): ApprovalView {
  return {
    id: "a-1", kind: "tool_call", client_id: "claude-desktop-1a2b", client_name: "Claude Desktop", session_id: "s-1", account: "main",
    tool: "stop_live_algorithm", scope: "qc:live:execute", summary: "Claude Desktop wants to stop the live algorithm of project “Momentum” (123).",
    arguments: { projectId: 123 }, arguments_digest: "0123456789abcdef0123456789abcdef", created: now / 1000 - 18, expires: now / 1000 + 42, ...over,
  };
}

const pending = [
  approval(),
  approval({ id: "a-2", tool: "delete_project", scope: "qc:projects:delete", summary: "Claude Desktop wants to delete project 7." }),
  approval({ id: "p-1", kind: "pairing", tool: null, scope: null, summary: "Claude Desktop wants to connect.", arguments: { host: "/usr/bin/claude-desktop" } }),
];

function fakeApi() {
  return {
    appInfo: vi.fn().mockResolvedValue(info),
    status: vi.fn().mockResolvedValue({ paused: true }),
    approvals: vi.fn().mockResolvedValue(pending),
    accounts: vi.fn().mockResolvedValue([account]),
    clients: vi.fn().mockResolvedValue([client]),
    presets: vi.fn().mockResolvedValue(presets),
    auditTail: vi.fn().mockResolvedValue(records),
    auditVerify: vi.fn().mockResolvedValue({ intact: true, records: 3, files: 1 }),
    settings: vi.fn().mockResolvedValue({ token_ttl_secs: 900, approval_timeout_secs: 120, policy: {} }),
    scopes: vi.fn().mockResolvedValue(scopes),
    autostart: vi.fn().mockResolvedValue(false),
  };
}

// jsdom lays nothing out and paints nothing, so axe cannot compute colour contrast here: it would
// report every text node as "incomplete". Contrast is checked on the palette itself instead
// (theme.test.ts), in both themes.
const AXE_OPTIONS: axe.RunOptions = { rules: { "color-contrast": { enabled: false } } };

async function serious(root: Element): Promise<string[]> {
  const result = await axe.run(root, AXE_OPTIONS);
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

/** Put a view in a page of its own, the way the window shows it: inside `main`. */
function page(view: HTMLElement): HTMLElement {
  const main = document.createElement("main");
  main.appendChild(view);
  document.body.replaceChildren(main);
  return main;
}

afterEach(() => {
  document.body.replaceChildren();
});

describe("accessibility (axe, without colour contrast)", () => {
  it("approvals: tool calls and a first connection", async () => {
    const view = approvalsView(fakeApi() as never, () => undefined);
    page(view.root);
    await view.refresh();
    expect(view.root.querySelectorAll(".approval-card")).toHaveLength(3);
    expect(await serious(document.body)).toEqual([]);
  });

  it("activity: the log, the chart, the filters and a selected record", async () => {
    const view = activityView(fakeApi() as never);
    page(view.root);
    await view.refresh();
    view.root.querySelector<HTMLElement>('.record-row[data-seq="3"]')!.click();
    view.root.querySelector<HTMLButtonElement>("#record-raw-toggle")?.click();
    expect(await serious(document.body)).toEqual([]);
  });

  it("clients: a card, its scopes and the new-client form", async () => {
    const view = clientsView(fakeApi() as never);
    page(view.root);
    await view.refresh();
    expect(view.root.querySelector(".card.client")).not.toBeNull();
    expect(await serious(document.body)).toEqual([]);
  });

  it("accounts: a card with its rename field open, and the form", async () => {
    const view = accountsView(fakeApi() as never, () => undefined);
    page(view.root);
    await view.refresh();
    [...view.root.querySelectorAll<HTMLButtonElement>(".card.account button")].find((b) => b.textContent === "Rename")!.click();
    expect(await serious(document.body)).toEqual([]);
  });

  it("settings: the policy table, the switches and About", async () => {
    const view = settingsView(fakeApi() as never, () => info);
    page(view.root);
    await view.refresh();
    expect(view.root.querySelector("table.policy")).not.toBeNull();
    expect(await serious(document.body)).toEqual([]);
  });

  it("setup guide: its first step", async () => {
    const guide = onboardingView(fakeApi() as never, () => undefined, { pollMs: 1_000_000, armDelayMs: 0 });
    page(guide.root);
    await guide.refresh();
    expect(await serious(document.body)).toEqual([]);
    guide.stop();
  });

  it("the whole window: header, navigation and the view it opens on", async () => {
    const root = document.createElement("div");
    document.body.replaceChildren(root);
    mount(root, fakeApi() as never);
    await vi.waitFor(() => expect(root.querySelector("main .approval-card")).not.toBeNull());
    expect(await serious(document.body)).toEqual([]);
  });
});
