import { describe, expect, it, vi } from "vitest";
import type { ConnectPreview, PresetInfo } from "../bindings";
import { presetPicker, previewPanel } from "./clients";

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
