import { describe, expect, it, vi } from "vitest";
import type { AppInfo, ScopeInfo } from "../bindings";
import { policyTable, readPolicy, settingsView, weakened } from "./settings";

const scopes: ScopeInfo[] = [
  { name: "qc:live:read", description: "See live algorithms", default_policy: "allow", tools: ["read_live_algorithm"] },
  { name: "qc:live:execute", description: "Run and command live algorithms", default_policy: "ask", tools: ["stop_live_algorithm"] },
];

describe("policy table", () => {
  it("shows the policy in force and marks the defaults", () => {
    const table = policyTable(scopes, { "qc:live:read": "deny" });
    const selects = table.querySelectorAll<HTMLSelectElement>("select");
    expect(selects[0].value).toBe("deny");
    expect(selects[1].value).toBe("ask");
    expect(selects[1].selectedOptions[0].textContent).toBe("ask (default)");
  });

  it("saves only what differs from the defaults", () => {
    const table = policyTable(scopes, {});
    const selects = table.querySelectorAll<HTMLSelectElement>("select");
    expect(readPolicy(table, scopes)).toEqual({});
    selects[1].value = "deny";
    expect(readPolicy(table, scopes)).toEqual({ "qc:live:execute": "deny" });
  });
});

describe("weakening the policy", () => {
  it("names the scopes that would no longer ask", () => {
    expect(weakened(scopes, { "qc:live:execute": "allow" })).toEqual(["qc:live:execute"]);
    expect(weakened(scopes, { "qc:live:execute": "deny", "qc:live:read": "ask" })).toEqual([]);
  });
});

const info: AppInfo = {
  version: "0.3.1",
  demo: false,
  problem: null,
  data_dir: "/home/t/.local/share/keybridge",
  socket: "/run/user/1000/keybridge.sock",
  quantconnect: "https://www.quantconnect.com/api/v2",
  bridge: "/usr/bin/keybridge-mcp",
};

describe("about", () => {
  it("says which Keybridge this is, where its data lives and which bridge clients launch", async () => {
    const api = {
      settings: vi.fn().mockResolvedValue({ token_ttl_secs: 900, approval_timeout_secs: 120, policy: {} }),
      scopes: vi.fn().mockResolvedValue(scopes),
      autostart: vi.fn().mockResolvedValue(false),
    };
    const view = settingsView(api as never, () => info);
    await view.refresh();
    const about = view.root.querySelector("#about")!;
    expect(about.querySelector("#about-version")?.textContent).toBe("Keybridge 0.3.1");
    expect(about.textContent).toContain("/home/t/.local/share/keybridge");
    expect(about.textContent).toContain("/usr/bin/keybridge-mcp");
    expect(view.root.textContent?.split("/usr/bin/keybridge-mcp")).toHaveLength(2);
  });

  it("is still shown when the settings cannot be read", async () => {
    const api = { settings: vi.fn().mockRejectedValue(new Error("Keybridge is not running")), scopes: vi.fn().mockResolvedValue([]) };
    const view = settingsView(api as never, () => info);
    await view.refresh();
    expect(view.root.querySelector(".notice.error")?.textContent).toBe("Keybridge is not running");
    expect(view.root.querySelector("#about-version")?.textContent).toBe("Keybridge 0.3.1");
  });
});

describe("limits per client", () => {
  it("lists each client's limits to change in place, and leaves revoked clients out", async () => {
    const limits = { calls_per_minute: 120, live_deployments_per_day: 10, calls_in_flight: 100 };
    const client = (client_id: string, name: string, revoked: boolean) => ({
      client_id, name, account: "main", preset: "research", scopes: [], policy: {}, token_ttl_secs: 900, mode: "host",
      approved_hosts: [], revoked, created: 0, last_seen: null, sessions: [], limits,
    });
    const api = {
      settings: vi.fn().mockResolvedValue({ token_ttl_secs: 900, approval_timeout_secs: 120, policy: {} }),
      scopes: vi.fn().mockResolvedValue(scopes),
      autostart: vi.fn().mockResolvedValue(false),
      clients: vi.fn().mockResolvedValue([client("c1", "Claude Desktop", false), client("c2", "Old", true)]),
      clientLimits: vi.fn().mockResolvedValue({}),
    };
    const view = settingsView(api as never, () => info);
    await view.refresh();
    const panel = view.root.querySelector("#client-limits")!;
    expect([...panel.querySelectorAll(".client-limits")].map((e) => (e as HTMLElement).dataset.client)).toEqual(["c1"]);
    const perDay = panel.querySelector<HTMLInputElement>("#limit-live-deployments-c1")!;
    perDay.value = "2";
    panel.querySelector<HTMLButtonElement>("button.save-limits")!.click();
    await vi.waitFor(() => expect(api.clientLimits).toHaveBeenCalledWith("c1", { calls_per_minute: 120, live_deployments_per_day: 2, calls_in_flight: 100 }));
    await vi.waitFor(() => expect(api.clients).toHaveBeenCalledTimes(2));
  });
});
