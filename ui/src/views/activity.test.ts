import { describe, expect, it, vi } from "vitest";
import type { AuditRecordView } from "../bindings";
import type { Api } from "../ipc";
import { activityView } from "./activity";

const now = Date.now();
const records: AuditRecordView[] = [
  { seq: 1, ts: now - 5000, event: { kind: "authentication", client: "c1", ok: true, host: "/usr/bin/claude-desktop" } },
  { seq: 2, ts: now - 4000, event: { kind: "tool_call", client: "c1", tool: "read_project", scope: "qc:projects:read", decision: "allowed", outcome: "ok" } },
  { seq: 3, ts: now - 3000, event: { kind: "tool_call", client: "c1", tool: "stop_live_algorithm", scope: "qc:live:execute", decision: "denied", outcome: "approval_denied", error: "you denied this call in Keybridge" } },
];

function fakeApi(verify: () => Promise<unknown>): Api {
  return { auditTail: vi.fn().mockResolvedValue(records), auditVerify: vi.fn(verify), auditExport: vi.fn() } as unknown as Api;
}

describe("activity", () => {
  it("lists records newest first, adds live ones, and filters by tool", async () => {
    const view = activityView(fakeApi(() => Promise.resolve({ intact: true, records: 3, files: 1 })));
    document.body.replaceChildren(view.root);
    await view.refresh();
    const seqs = () => [...view.root.querySelectorAll<HTMLElement>("tr.record-row")].map((r) => r.dataset.seq);
    expect(seqs()).toEqual(["3", "2", "1"]);
    expect(view.root.querySelector("#chain-status")?.textContent).toContain("chain intact");
    view.add({ seq: 4, ts: now, event: { kind: "tool_call", client: "c2", tool: "read_project", decision: "allowed", outcome: "ok" } });
    expect(seqs()).toEqual(["4", "3", "2", "1"]);
    view.add(records[0]);
    expect(seqs()).toHaveLength(4);
    const tool = view.root.querySelector<HTMLSelectElement>("#filter-tool")!;
    tool.value = "read_project";
    tool.dispatchEvent(new Event("change"));
    expect(seqs()).toEqual(["4", "2"]);
    expect(view.root.querySelector(".legend")?.textContent).toContain("c1: 2");
  });

  it("shows every field of a record when selected, labelled, with the raw JSON on demand", async () => {
    const view = activityView(fakeApi(() => Promise.resolve({ intact: true, records: 3, files: 1 })));
    await view.refresh();
    const row = view.root.querySelector<HTMLElement>('tr.record-row[data-seq="3"]')!;
    row.click();
    expect(row.classList.contains("selected")).toBe(true);
    const details = view.root.querySelector("#record-details")!;
    const field = (key: string) => details.querySelector(`dd[data-field="${key}"]`);
    expect(field("error")?.textContent).toBe("you denied this call in Keybridge");
    expect(field("error")?.previousElementSibling?.textContent).toBe("Error");
    expect(field("tool")?.previousElementSibling?.textContent).toBe("Tool");
    expect(field("seq")?.textContent).toBe("3");
    const raw = details.querySelector<HTMLElement>("#record-raw")!;
    expect(raw.hidden).toBe(true);
    const toggle = details.querySelector<HTMLButtonElement>("#record-raw-toggle")!;
    toggle.click();
    expect(raw.hidden).toBe(false);
    expect(toggle.getAttribute("aria-expanded")).toBe("true");
    expect(raw.textContent).toContain('"error": "you denied this call in Keybridge"');
    toggle.click();
    expect(raw.hidden).toBe(true);
  });

  it("keeps the selected row marked when a live record arrives", async () => {
    const view = activityView(fakeApi(() => Promise.resolve({ intact: true, records: 3, files: 1 })));
    await view.refresh();
    view.root.querySelector<HTMLElement>('tr.record-row[data-seq="2"]')!.click();
    view.add({ seq: 9, ts: now, event: { kind: "admin", action: "paused" } });
    expect(view.root.querySelector('tr.record-row[data-seq="2"]')?.classList.contains("selected")).toBe(true);
    expect(view.root.querySelector("#record-details dd[data-field=\"seq\"]")?.textContent).toBe("2");
  });

  it("fits four columns: time, client, decision, and what happened with its kind", async () => {
    const view = activityView(fakeApi(() => Promise.resolve({ intact: true, records: 3, files: 1 })));
    await view.refresh();
    expect([...view.root.querySelectorAll("table.records th")].map((th) => th.textContent)).toEqual(["Time", "Client", "Decision", "What"]);
    const row = view.root.querySelector<HTMLElement>('tr.record-row[data-seq="3"]')!;
    expect(row.children).toHaveLength(4);
    expect(row.querySelector("td.text .kind")?.textContent).toBe("tool call");
    expect(row.querySelector("td.text")?.textContent).toContain("you denied this call");
  });

  it("says plainly when the chain is broken", async () => {
    const view = activityView(fakeApi(() => Promise.reject(new Error("record 2 was edited: its MAC does not match"))));
    await view.refresh();
    const status = view.root.querySelector("#chain-status")?.textContent ?? "";
    expect(status).toContain("chain broken");
    expect(status).toContain("record 2 was edited");
  });
});
