import { afterEach, describe, expect, it, vi } from "vitest";
import type { AccountView, ApprovalView, ClientView, ConnectDone, ConnectionTest, ConnectPreview, PresetInfo } from "../bindings";
import { type StepName, onboardingView } from "./onboarding";

const CLIENT = "claude-desktop-1a2b";
const main: AccountView = { id: "main", user_id: "123456", organization_id: null, created: 0 };
const presets: PresetInfo[] = [
  { name: "read-only", title: "Read-Only", description: "Look at everything, change nothing.", scopes: ["qc:projects:read"] },
  { name: "research", title: "Research", description: "Write and backtest code; no live trading.", scopes: ["qc:projects:read", "qc:backtests:write"] },
  { name: "trader", title: "Trader", description: "Research, plus deploy, stop and command live algorithms.", scopes: ["qc:live:write"] },
];
const preview: ConnectPreview = {
  app: "Claude Desktop",
  path: "/home/t/.config/Claude/claude_desktop_config.json",
  file_exists: true,
  change: "added",
  previous_entry: null,
  entry: '{"command": "/usr/bin/keybridge-mcp", "args": ["--client", "claude-desktop-1a2b"]}',
  server_name: "quantconnect",
  other_servers: ["filesystem"],
  file_digest: "ab12",
};
const written: ConnectDone = {
  path: "/home/t/.config/Claude/claude_desktop_config.json",
  backup: "/home/t/.config/Claude/claude_desktop_config.json.bak",
  change: "added",
  next_step: "Quit Claude Desktop completely and open it again.",
};
const tested: ConnectionTest = {
  ok: true,
  command: "/usr/bin/keybridge-mcp --client claude-desktop-1a2b",
  protocol_version: "2025-06-18",
  server: "keybridge-mcp 0.1.0",
  tools: ["list_projects", "read_project"],
  message: "keybridge-mcp answered and lists 2 tools.",
};

function client(approvedHosts: string[] = []): ClientView {
  return {
    client_id: CLIENT, name: "Claude Desktop", account: "main", preset: "research", scopes: [], policy: {}, token_ttl_secs: 900,
    mode: "host", approved_hosts: approvedHosts, revoked: false, created: 0, last_seen: null, sessions: [],
    limits: { calls_per_minute: 120, live_deployments_per_day: 10, calls_in_flight: 16 },
  };
}

function pairing(over: Partial<ApprovalView> = {}): ApprovalView {
  const now = Date.now() / 1000;
  return {
    id: "p-1", kind: "pairing", client_id: CLIENT, client_name: "Claude Desktop", session_id: null, account: "main", tool: null, scope: null,
    summary: "Claude Desktop (/usr/bin/claude-desktop) wants to connect.", arguments: { host: "/usr/bin/claude-desktop" },
    arguments_digest: "0123456789abcdef", created: now, expires: now + 120, ...over,
  };
}

function fakeApi() {
  return {
    addAccount: vi.fn().mockResolvedValue(main),
    presets: vi.fn().mockResolvedValue(presets),
    addClient: vi.fn().mockResolvedValue({ client_id: CLIENT, client_key: null }),
    connectPreview: vi.fn().mockResolvedValue(preview),
    connectApply: vi.fn().mockResolvedValue(written),
    approvals: vi.fn().mockResolvedValue([] as ApprovalView[]),
    clients: vi.fn().mockResolvedValue([client()]),
    decide: vi.fn().mockResolvedValue({ approval: "p-1", decision: "approved" }),
    testConnection: vi.fn().mockResolvedValue(tested),
  };
}

type Guide = ReturnType<typeof onboardingView>;
const started: Guide[] = [];

function start(api = fakeApi()) {
  const leave = vi.fn();
  const guide = onboardingView(api as never, leave, { pollMs: 20, armDelayMs: 0 });
  document.body.replaceChildren(guide.root);
  started.push(guide);
  return { api, leave, guide, $: <T extends HTMLElement = HTMLElement>(css: string) => guide.root.querySelector<T>(css) };
}

const stepOf = (guide: Guide) => guide.root.querySelector<HTMLElement>("#onboarding-step")?.dataset.step;
const click = (guide: Guide, css: string) => guide.root.querySelector<HTMLButtonElement>(css)!.click();

async function at(guide: Guide, step: StepName) {
  await vi.waitFor(() => expect(stepOf(guide)).toBe(step));
}

/** Through the account and client steps, with the defaults. */
async function toConnect(guide: Guide) {
  (guide.root.querySelector("#account-user") as HTMLInputElement).value = "123456";
  (guide.root.querySelector("#account-token") as HTMLInputElement).value = "s3cr3t";
  click(guide, "#account-add");
  await at(guide, "client");
  await vi.waitFor(() => expect(guide.root.querySelector<HTMLButtonElement>("#onboarding-client-create")?.disabled).toBe(false));
  click(guide, "#onboarding-client-create");
  await at(guide, "connect");
}

async function toWaiting(guide: Guide) {
  await toConnect(guide);
  await vi.waitFor(() => expect(guide.root.querySelector("#connect-apply")).not.toBeNull());
  click(guide, "#connect-apply");
  await at(guide, "restart");
  click(guide, "#onboarding-restarted");
  await at(guide, "waiting");
}

afterEach(() => {
  for (const guide of started.splice(0)) guide.stop();
  document.body.replaceChildren();
});

describe("first-run guide", () => {
  it("starts on the account form, with the steps ahead shown and the first field focused", async () => {
    const { guide, $ } = start();
    // The window shows the guide, then refreshes it: that is when the focus can move.
    await guide.refresh();
    expect(guide.root.id).toBe("onboarding");
    expect(guide.root.classList.contains("view")).toBe(true);
    expect(stepOf(guide)).toBe("account");
    expect($("#onboarding-step h3")?.textContent).toBe("Add your QuantConnect account");
    const items = [...guide.root.querySelectorAll<HTMLElement>("#onboarding-steps li")];
    expect(items.map((li) => li.dataset.step)).toEqual(["account", "client", "connect", "restart", "waiting", "done"]);
    expect(items[0].classList.contains("current")).toBe(true);
    expect(items[0].getAttribute("aria-current")).toBe("step");
    expect(items[1].getAttribute("aria-current")).toBeNull();
    expect($("#account-form")).not.toBeNull();
    expect($<HTMLInputElement>("#account-token")?.type).toBe("password");
    expect($("#onboarding-step")?.textContent).toContain("OS keychain");
    expect($("#onboarding-step")?.textContent).toContain("never shown again");
    expect(document.activeElement?.id).toBe("account-name");
  });

  it("walks from the account to Claude's approved first connection, then opens Activity", async () => {
    const { api, guide, leave, $ } = start();
    await toConnect(guide);
    expect(api.addAccount).toHaveBeenCalledWith({ name: "main", user_id: "123456", organization_id: null, api_token: "s3cr3t" });
    expect(api.addClient).toHaveBeenCalledWith({ name: "Claude Desktop", account: "main", preset: "research", scopes: [], with_key: false });
    const items = [...guide.root.querySelectorAll<HTMLElement>("#onboarding-steps li")];
    expect(items.map((li) => li.className)).toEqual(["done", "done", "current", "", "", ""]);

    await vi.waitFor(() => expect($("#connect-preview")?.textContent).toContain("filesystem"));
    expect(api.connectPreview).toHaveBeenCalledWith(CLIENT);
    expect(document.activeElement?.id).toBe("connect-apply");
    click(guide, "#connect-apply");
    await at(guide, "restart");
    expect(api.connectApply).toHaveBeenCalledWith(CLIENT, "ab12");
    expect($("#connect-result")?.textContent).toContain("Claude Desktop is connected: /home/t/.config/Claude/claude_desktop_config.json");
    expect($("#onboarding-step")?.textContent).toContain("Quit it completely");
    expect(document.activeElement?.id).toBe("onboarding-restarted");

    click(guide, "#onboarding-restarted");
    await at(guide, "waiting");
    expect($("#onboarding-approvals")?.textContent).toContain("Waiting for Claude Desktop to connect");
    api.approvals.mockResolvedValue([pairing(), pairing({ id: "p-other", client_id: "cursor-9f8e" }), pairing({ id: "t-1", kind: "tool_call" })]);
    await vi.waitFor(() => expect(guide.root.querySelectorAll(".approval-card.pairing")).toHaveLength(1));
    expect(guide.root.querySelector<HTMLElement>(".approval-card")?.dataset.id).toBe("p-1");
    expect($("#onboarding-approvals .waiting-note")).toBeNull();
    api.clients.mockResolvedValue([client(["/usr/bin/claude-desktop"])]);
    click(guide, ".approval-card.pairing button.approve");
    await at(guide, "done");
    expect(api.decide).toHaveBeenCalledWith("p-1", "approve", undefined);
    expect($("#onboarding-done")?.textContent).toContain("“Research” preset");
    expect(document.activeElement?.id).toBe("onboarding-finish");
    expect([...guide.root.querySelectorAll("#onboarding-steps li.done")]).toHaveLength(5);
    click(guide, "#onboarding-finish");
    expect(leave).toHaveBeenCalledWith("activity");
  });

  it("keeps a pairing card in place across polls, so it can be read and answered", async () => {
    const { api, guide } = start();
    await toWaiting(guide);
    api.approvals.mockResolvedValue([pairing()]);
    await vi.waitFor(() => expect(guide.root.querySelector(".approval-card.pairing")).not.toBeNull());
    const card = guide.root.querySelector(".approval-card.pairing");
    const calls = api.approvals.mock.calls.length;
    await vi.waitFor(() => expect(api.approvals.mock.calls.length).toBeGreaterThan(calls + 1));
    expect(guide.root.querySelector(".approval-card.pairing")).toBe(card);
  });

  it("puts the focus on Deny when Claude's request appears, and Esc denies it", async () => {
    const { api, guide, $ } = start();
    await toWaiting(guide);
    api.approvals.mockResolvedValue([pairing()]);
    await vi.waitFor(() => expect($(".approval-card.pairing")).not.toBeNull());
    expect(document.activeElement).toBe($(".approval-card.pairing button.deny"));
    document.activeElement!.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true, cancelable: true }));
    await vi.waitFor(() => expect($(".waiting-note")?.textContent).toContain("You denied it"));
    expect(api.decide).toHaveBeenCalledWith("p-1", "deny", undefined);
  });

  it("stays waiting after a denial and says how to ask again", async () => {
    const { api, guide, $ } = start();
    await toWaiting(guide);
    api.approvals.mockResolvedValue([pairing()]);
    await vi.waitFor(() => expect($(".approval-card.pairing button.deny")).not.toBeNull());
    click(guide, ".approval-card.pairing button.deny");
    await vi.waitFor(() => expect($(".waiting-note")?.textContent).toContain("You denied it"));
    expect(api.decide).toHaveBeenCalledWith("p-1", "deny", undefined);
    expect(stepOf(guide)).toBe("waiting");
  });

  it("finishes when the connection was allowed elsewhere, and says so when a request went away unanswered", async () => {
    const { api, guide, $ } = start();
    await toWaiting(guide);
    api.approvals.mockResolvedValue([pairing()]);
    await vi.waitFor(() => expect($(".approval-card.pairing")).not.toBeNull());
    api.approvals.mockResolvedValue([]);
    guide.approvalClosed("p-1");
    await vi.waitFor(() => expect($(".waiting-note")?.textContent).toContain("denied or timed out"));
    expect($(".approval-card")).toBeNull();

    api.clients.mockResolvedValue([client(["/usr/bin/claude-desktop"])]);
    guide.clientChanged("someone-else");
    guide.clientChanged(CLIENT);
    await at(guide, "done");
  });

  it("claims only its own client's pairing, and jumps to waiting when Claude is quicker than the trader", async () => {
    const { api, guide } = start();
    expect(guide.approvalOpened(pairing())).toBe(false);
    await toConnect(guide);
    await vi.waitFor(() => expect(guide.root.querySelector("#connect-apply")).not.toBeNull());
    click(guide, "#connect-apply");
    await at(guide, "restart");
    expect(guide.approvalOpened(pairing({ client_id: "cursor-9f8e" }))).toBe(false);
    expect(guide.approvalOpened(pairing({ kind: "tool_call", tool: "list_projects" }))).toBe(false);
    api.approvals.mockResolvedValue([pairing()]);
    expect(guide.approvalOpened(pairing())).toBe(true);
    expect(stepOf(guide)).toBe("waiting");
    await vi.waitFor(() => expect(guide.root.querySelector(".approval-card.pairing")).not.toBeNull());
  });

  it("offers Test connection while waiting", async () => {
    const { api, guide, $ } = start();
    await toWaiting(guide);
    const run = $<HTMLButtonElement>("#onboarding-test")!;
    expect(run.classList.contains("test-connection")).toBe(true);
    run.click();
    await vi.waitFor(() => expect($(".connection-test.ok")).not.toBeNull());
    expect(api.testConnection).toHaveBeenCalledWith(CLIENT);
    expect($(".connection-test .tool-count")?.textContent).toContain("2 tools");
  });

  it("stops asking for approvals when it is hidden, and resumes when shown", async () => {
    const { api, guide } = start();
    await toWaiting(guide);
    await vi.waitFor(() => expect(api.approvals).toHaveBeenCalled());
    guide.stop();
    const calls = api.approvals.mock.calls.length;
    await new Promise((r) => setTimeout(r, 80));
    expect(api.approvals.mock.calls.length).toBeLessThanOrEqual(calls + 1);
    await guide.refresh();
    await vi.waitFor(() => expect(api.approvals.mock.calls.length).toBeGreaterThan(calls + 2));
    guide.stop();
  });

  it("shows why Claude's config cannot be read, and lets the trader retry or skip", async () => {
    const api = fakeApi();
    api.connectPreview.mockRejectedValue(new Error("claude_desktop_config.json is not valid JSON (line 3); it was left untouched"));
    const { guide, $ } = start(api);
    await toConnect(guide);
    await vi.waitFor(() => expect($("#connect-error")?.textContent).toContain("not valid JSON"));
    expect(document.activeElement?.id).toBe("onboarding-connect-retry");
    api.connectPreview.mockResolvedValueOnce(preview);
    click(guide, "#onboarding-connect-retry");
    await vi.waitFor(() => expect($("#connect-preview")).not.toBeNull());
    // Cancelling the preview writes nothing and offers the same choices.
    click(guide, "#connect-preview button.secondary");
    expect(api.connectApply).not.toHaveBeenCalled();
    click(guide, "#onboarding-connect-skip");
    await at(guide, "done");
    expect($("#onboarding-done")?.textContent).toContain("not connected yet");
  });

  it("says why a client could not be created and lets the trader try again", async () => {
    const api = fakeApi();
    api.addClient.mockRejectedValueOnce(new Error("a client named “Claude Desktop” exists already"));
    const { guide, $ } = start(api);
    (guide.root.querySelector("#account-token") as HTMLInputElement).value = "s3cr3t";
    click(guide, "#account-add");
    await at(guide, "client");
    expect($("#onboarding-step .notice.ok")?.textContent).toContain("OS keychain");
    await vi.waitFor(() => expect(document.activeElement?.getAttribute("value")).toBe("research"));
    expect($<HTMLInputElement>("#onboarding-client-name")?.value).toBe("Claude Desktop");
    expect($("#onboarding-step")?.textContent).toContain("Write and backtest code; no live trading.");
    $<HTMLInputElement>('input[name="onboarding-preset"][value="trader"]')!.checked = true;
    $<HTMLInputElement>("#onboarding-client-name")!.value = "Claude at work";
    click(guide, "#onboarding-client-create");
    await vi.waitFor(() => expect($("#onboarding-client-status .notice.error")?.textContent).toContain("exists already"));
    expect(stepOf(guide)).toBe("client");
    click(guide, "#onboarding-client-create");
    await at(guide, "connect");
    expect(api.addClient).toHaveBeenLastCalledWith({ name: "Claude at work", account: "main", preset: "trader", scopes: [], with_key: false });
  });

  it("can be skipped at any step, to the view that carries on from there", async () => {
    const first = start();
    click(first.guide, "#onboarding-skip");
    expect(first.leave).toHaveBeenCalledWith("accounts");
    const later = start();
    click(later.guide, "#account-add");
    await at(later.guide, "client");
    click(later.guide, "#onboarding-skip");
    expect(later.leave).toHaveBeenCalledWith("clients");
  });
});
