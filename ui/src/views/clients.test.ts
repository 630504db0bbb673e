import { describe, expect, it, vi } from "vitest";
import type { ClientView, ConnectionTest, ConnectPreview, PresetInfo } from "../bindings";
import { connectionTestResult, limitsEditor, refusedConnections, presetPicker, previewPanel, testConnectionButton } from "./clients";

const presets: PresetInfo[] = [
  { name: "read-only", title: "Read-Only", description: "Look at everything, change nothing.", scopes: ["qc:projects:read"] },
  { name: "trader", title: "Trader", description: "Research, plus deploy, stop and command live algorithms.", scopes: ["qc:live:write", "qc:live:execute"] },
];

function preview(over: Partial<ConnectPreview> = {}): ConnectPreview {
  return {
    app: "Claude Desktop",
    path: "/home/t/.config/Claude/claude_desktop_config.json",
    file_exists: true,
    change: "added",
    previous_entry: null,
    entry: '{\n  "command": "/usr/bin/keybridge-mcp",\n  "args": ["--client", "c1"]\n}',
    server_name: "quantconnect",
    other_servers: ["filesystem", "github"],
    file_digest: "ab12",
    ...over,
  };
}

describe("preset picker", () => {
  it("says in plain words what each preset allows and marks the current one", () => {
    const picker = presetPicker(presets, "p", "trader");
    expect(picker.textContent).toContain("deploy, stop and command live algorithms");
    expect(picker.textContent).toContain("change nothing");
    const checked = picker.querySelector<HTMLInputElement>("input:checked");
    expect(checked?.value).toBe("trader");
  });
});

describe("connect preview", () => {
  it("shows the file, what changes, and the servers that stay", () => {
    const panel = previewPanel(preview(), vi.fn(), vi.fn());
    expect(panel.textContent).toContain("claude_desktop_config.json");
    expect(panel.textContent).toContain("A “quantconnect” server will be added.");
    expect([...panel.querySelectorAll(".keeps code")].map((c) => c.textContent)).toEqual(["filesystem", "github"]);
    expect(panel.querySelector("pre.entry")?.textContent).toContain("--client");
  });

  it("says when the file will be created or an entry replaced, and writes only on request", () => {
    const apply = vi.fn();
    const created = previewPanel(preview({ file_exists: false, other_servers: [] }), apply, vi.fn());
    expect(created.textContent).toContain("(will be created)");
    expect(created.querySelector(".keeps")).toBeNull();
    const replaced = previewPanel(preview({ change: "replaced", previous_entry: '{"command": "old"}' }), apply, vi.fn());
    expect(replaced.textContent).toContain("will be replaced");
    expect(replaced.querySelector("details pre")?.textContent).toContain("old");
    expect(apply).not.toHaveBeenCalled();
    (replaced.querySelector("#connect-apply") as HTMLButtonElement).click();
    expect(apply).toHaveBeenCalledOnce();
  });
});

describe("clients view", () => {
  it("keeps a new client's key on screen after the list refreshes: it is shown only once", async () => {
    const { clientsView } = await import("./clients");
    const api = {
      presets: vi.fn().mockResolvedValue(presets),
      accounts: vi.fn().mockResolvedValue([{ id: "main", user_id: "1", organization_id: null, created: 0 }]),
      clients: vi.fn().mockResolvedValue([]),
      addClient: vi.fn().mockResolvedValue({ client_id: "terminal-1a2b", client_key: "k".repeat(64) }),
    };
    const view = clientsView(api as never);
    await view.refresh();
    (view.root.querySelector('input[name="preset"][value="trader"]') as HTMLInputElement).checked = true;
    (view.root.querySelector("#client-key-mode") as HTMLInputElement).checked = true;
    (view.root.querySelector("#client-add") as HTMLButtonElement).click();
    await vi.waitFor(() => expect(api.clients).toHaveBeenCalledTimes(2));
    await view.refresh();
    expect(api.addClient).toHaveBeenCalledWith({ name: "Claude Desktop", account: "main", preset: "trader", scopes: [], with_key: true });
    expect(view.root.querySelector(".secret-once")?.textContent).toBe("k".repeat(64));
  });
});

function passed(over: Partial<ConnectionTest> = {}): ConnectionTest {
  return {
    ok: true,
    command: "/usr/bin/keybridge-mcp --client c1",
    protocol_version: "2025-06-18",
    server: "keybridge-mcp 0.1.0",
    tools: ["list_projects", "read_project", "stop_live_algorithm"],
    message: "keybridge-mcp answered and lists 3 tools.",
    ...over,
  };
}

describe("connection test", () => {
  it("shows the message, the command, the protocol, the server and every tool", () => {
    const box = connectionTestResult(passed());
    expect(box.classList.contains("ok")).toBe(true);
    expect(box.querySelector(".message")?.textContent).toBe("keybridge-mcp answered and lists 3 tools.");
    expect(box.querySelector("code")?.textContent).toBe("/usr/bin/keybridge-mcp --client c1");
    expect(box.querySelector(".protocol")?.textContent).toBe("2025-06-18");
    expect(box.querySelector(".server")?.textContent).toBe("keybridge-mcp 0.1.0");
    expect([...box.querySelectorAll("ul.tool-list li")].map((li) => li.textContent)).toEqual(["list_projects", "read_project", "stop_live_algorithm"]);
    expect(box.querySelector(".tool-count")?.textContent).toContain("3 tools");
    expect(connectionTestResult(passed({ tools: ["read_project"] })).querySelector(".tool-count")?.textContent).toContain("1 tool ");
  });

  it("says what failed, as text, without an empty tool list", () => {
    const box = connectionTestResult(passed({ ok: false, protocol_version: null, server: null, tools: [], message: "<b>keybridge-mcp</b> did not start: no such file" }));
    expect(box.classList.contains("error")).toBe(true);
    expect(box.getAttribute("role")).toBe("alert");
    expect(box.querySelector(".message")?.textContent).toContain("<b>keybridge-mcp</b>");
    expect(box.querySelector("b")).toBeNull();
    expect(box.querySelector(".tool-list")).toBeNull();
    expect(box.querySelector("code")?.textContent).toContain("keybridge-mcp");
  });

  it("says it runs, then shows the result, or the command's error", async () => {
    let finish: (t: ConnectionTest) => void = () => undefined;
    const api = { testConnection: vi.fn(() => new Promise<ConnectionTest>((resolve) => (finish = resolve))) };
    const box = document.createElement("div");
    const run = testConnectionButton(api as never, "c1", box, "t1");
    expect(run.id).toBe("t1");
    expect(run.classList.contains("test-connection")).toBe(true);
    run.click();
    expect(api.testConnection).toHaveBeenCalledWith("c1");
    expect(box.textContent).toBe("Running keybridge-mcp as Claude will…");
    expect(run.disabled).toBe(true);
    finish(passed());
    await vi.waitFor(() => expect(box.querySelector(".connection-test.ok")).not.toBeNull());
    expect(run.disabled).toBe(false);

    api.testConnection.mockImplementationOnce(() => Promise.reject(new Error("no client `c1`")));
    run.click();
    await vi.waitFor(() => expect(box.querySelector(".connection-test.error")?.textContent).toBe("no client `c1`"));
  });
});

describe("client card", () => {
  it("offers Test connection and shows the result in the card", async () => {
    const { clientsView } = await import("./clients");
    const client: ClientView = {
      client_id: "claude-desktop-1a2b", name: "Claude Desktop", account: "main", preset: "research", scopes: ["qc:projects:read"], policy: {},
      token_ttl_secs: 900, mode: "host", approved_hosts: [], revoked: false, created: 0, last_seen: null, sessions: [],
      limits: { calls_per_minute: 120, live_deployments_per_day: 10, calls_in_flight: 16 },
    };
    const api = {
      presets: vi.fn().mockResolvedValue(presets),
      accounts: vi.fn().mockResolvedValue([]),
      clients: vi.fn().mockResolvedValue([client]),
      testConnection: vi.fn().mockResolvedValue(passed()),
    };
    const view = clientsView(api as never);
    await view.refresh();
    const card = view.root.querySelector<HTMLElement>('.card.client[data-client="claude-desktop-1a2b"]')!;
    const run = card.querySelector<HTMLButtonElement>("button.secondary.test-connection")!;
    expect(run.textContent).toBe("Test connection");
    run.click();
    await vi.waitFor(() => expect(card.querySelector(".client-panel .connection-test.ok")).not.toBeNull());
    expect(api.testConnection).toHaveBeenCalledWith("claude-desktop-1a2b");
    expect(card.querySelectorAll(".tool-list li")).toHaveLength(3);
  });
});

describe("client limits", () => {
  const client: ClientView = {
    client_id: "c1", name: "Claude Desktop", account: "main", preset: "research", scopes: [], policy: {},
    token_ttl_secs: 900, mode: "host", approved_hosts: [], revoked: false, created: 0, last_seen: null, sessions: [],
    limits: { calls_per_minute: 120, live_deployments_per_day: 10, calls_in_flight: 16 },
  };

  it("says the limits in a line and saves a change with every field labelled", async () => {
    const api = { clientLimits: vi.fn().mockResolvedValue({}) };
    const refresh = vi.fn().mockResolvedValue(undefined);
    const show = vi.fn();
    const editor = limitsEditor(api, client, refresh, show);
    expect(editor.querySelector("summary")?.textContent).toBe("Limits: 120 calls a minute · 10 live deployments a day · 16 at once");
    const inputs = [...editor.querySelectorAll<HTMLInputElement>("input[type=number]")];
    expect(inputs.map((i) => i.closest("label")?.querySelector(".label")?.textContent)).toEqual(["Calls a minute", "Live deployments a day", "Calls at once"]);
    inputs[0].value = "30";
    editor.querySelector<HTMLButtonElement>("button.save-limits")!.click();
    await vi.waitFor(() => expect(refresh).toHaveBeenCalled());
    expect(api.clientLimits).toHaveBeenCalledWith("c1", { calls_per_minute: 30, live_deployments_per_day: 10, calls_in_flight: 16 });
    expect(show).toHaveBeenCalledWith("ok", "Limits of Claude Desktop saved.");
  });

  it("shows the broker's refusal of a bad value as it is", async () => {
    const api = { clientLimits: vi.fn().mockRejectedValue(new Error("calls in flight 0 is outside 1..=256")) };
    const show = vi.fn();
    const editor = limitsEditor(api, client, vi.fn(), show);
    editor.querySelector<HTMLButtonElement>("button.save-limits")!.click();
    await vi.waitFor(() => expect(show).toHaveBeenCalledWith("error", "calls in flight 0 is outside 1..=256"));
  });
});

describe("refused connections", () => {
  it("lists who was refused and why, most recent first, and shows nothing when none was", () => {
    const now = Date.UTC(2026, 10, 30, 12, 0, 0);
    const panel = refusedConnections([
      { client: "claude-desktop-1a2b", reason: "bad_key", count: 3, last: now / 1000 - 600 },
      { client: "nobody", reason: "unknown_client", count: 1, last: now / 1000 - 5 },
    ], now)!;
    expect(panel.querySelector("h3")?.textContent).toBe("Refused connections: 4");
    const rows = [...panel.querySelectorAll("tbody tr")].map((r) => [...r.querySelectorAll("td")].slice(0, 3).map((td) => td.textContent));
    expect(rows).toEqual([["nobody", "no such client", "1"], ["claude-desktop-1a2b", "wrong or missing client key", "3"]]);
    expect(refusedConnections([], now)).toBeNull();
  });
});
