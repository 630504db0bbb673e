import { describe, expect, it, vi } from "vitest";
import type { AuditRecordView } from "../bindings";
import type { Api } from "../ipc";
import { ROW_CAP, activityView } from "./activity";

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

describe("activity as a feed", () => {
  const api = (list: AuditRecordView[]) =>
    ({ auditTail: vi.fn(async () => [...list]), auditVerify: vi.fn().mockResolvedValue({ intact: true, records: list.length, files: 1 }), auditExport: vi.fn() }) as unknown as Api;
  // The first three records as the fixture declares them (the tests above add live ones to it).
  const base = records.slice(0, 3);
  const seqs = (root: HTMLElement) => [...root.querySelectorAll<HTMLElement>("tr.record-row")].map((r) => r.dataset.seq);
  const type = (el: HTMLInputElement, value: string) => {
    el.value = value;
    el.dispatchEvent(new Event("input"));
  };

  it("says tools by name, in rows, details and the tool filter", async () => {
    const view = activityView(api(base));
    await view.refresh();
    expect(view.root.querySelector('tr.record-row[data-seq="3"] td.text')?.textContent).toContain("Stop live algorithm: you denied");
    const options = [...view.root.querySelectorAll<HTMLOptionElement>("#filter-tool option")].map((o) => [o.value, o.textContent]);
    expect(options).toContainEqual(["stop_live_algorithm", "Stop live algorithm"]);
    view.root.querySelector<HTMLElement>('tr.record-row[data-seq="3"]')!.click();
    expect(view.root.querySelector('#record-details dd[data-field="tool"]')?.textContent).toBe("Stop live algorithm (stop_live_algorithm)");
  });

  it("puts a dated header above each day's records", async () => {
    const yesterday = now - 86_400_000;
    const view = activityView(api([{ seq: 1, ts: yesterday, event: { kind: "admin", action: "paused" } }, ...base.map((r) => ({ ...r, seq: r.seq + 1 }))]));
    await view.refresh();
    const rows = [...view.root.querySelectorAll<HTMLElement>("table.records tbody tr")];
    expect(rows.map((r) => (r.classList.contains("day-header") ? "day" : r.dataset.seq))).toEqual(["day", "4", "3", "2", "day", "1"]);
    const headers = view.root.querySelectorAll("tr.day-header td");
    expect(headers[0].textContent).toMatch(/^Today · .*\d{4}/);
    expect(headers[1].textContent).toMatch(/^Yesterday · .*\d{4}/);
    expect(headers[0].getAttribute("colspan")).toBe("4");
  });

  it("hides the broker's own records until asked, and says how many are hidden", async () => {
    const view = activityView(api([
      { seq: 1, ts: now - 9000, event: { kind: "broker_started", version: "0.3.1" } },
      { seq: 2, ts: now - 8000, event: { kind: "token_minted", client: "c1" } },
      ...base.map((r) => ({ ...r, seq: r.seq + 2 })),
    ]));
    await view.refresh();
    expect(seqs(view.root)).toEqual(["5", "4", "3"]);
    expect(view.root.querySelector<HTMLElement>("#row-cap")?.hidden).toBe(false);
    expect(view.root.querySelector("#row-cap")?.textContent).toContain("2 system records hidden");
    const toggle = view.root.querySelector<HTMLInputElement>("#activity-system")!;
    expect(toggle.checked).toBe(false);
    expect(toggle.closest("label")?.textContent).toContain("Show system records");
    toggle.checked = true;
    toggle.dispatchEvent(new Event("change"));
    expect(seqs(view.root)).toEqual(["5", "4", "3", "2", "1"]);
    expect(view.root.querySelector<HTMLElement>("#row-cap")?.hidden).toBe(true);
  });

  it("searches every word in any case, across client, tool name and what happened", async () => {
    const view = activityView(api(base));
    await view.refresh();
    const search = view.root.querySelector<HTMLInputElement>("#activity-search")!;
    expect(search.type).toBe("search");
    expect(search.closest("label")?.textContent).toContain("Search");
    type(search, "STOP live");
    expect(seqs(view.root)).toEqual(["3"]);
    type(search, "c1 denied");
    expect(seqs(view.root)).toEqual(["3"]);
    type(search, "nothing like this");
    expect(seqs(view.root)).toEqual([]);
    expect(view.root.querySelector("tr.no-rows")?.textContent).toBe("No record matches.");
    type(search, "");
    expect(seqs(view.root)).toEqual(["3", "2", "1"]);
  });

  it("says when the row cap applies", async () => {
    const many: AuditRecordView[] = Array.from({ length: ROW_CAP + 5 }, (_, i) => ({ seq: i + 1, ts: now - 1000, event: { kind: "tool_call", client: "c1", tool: "read_project", decision: "allowed", outcome: "ok" } }));
    const view = activityView(api(many));
    await view.refresh();
    expect(view.root.querySelectorAll("tr.record-row")).toHaveLength(ROW_CAP);
    expect(view.root.querySelector("#row-cap")?.textContent).toContain(`Showing the newest ${ROW_CAP} of ${ROW_CAP + 5} matching records`);
    const few = activityView(api(base));
    await few.refresh();
    expect(few.root.querySelector<HTMLElement>("#row-cap")?.hidden).toBe(true);
  });

  it("reaches every row by keyboard: Tab stops on rows, arrows move, Enter and Space open", async () => {
    const view = activityView(api(base));
    document.body.replaceChildren(view.root);
    await view.refresh();
    const row = (seq: string) => view.root.querySelector<HTMLElement>(`tr.record-row[data-seq="${seq}"]`)!;
    const key = (el: Element, k: string) => el.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true }));
    expect(row("3").tabIndex).toBe(0);
    row("3").focus();
    key(row("3"), "ArrowDown");
    expect(document.activeElement).toBe(row("2"));
    key(row("2"), "Enter");
    expect(row("2").getAttribute("aria-selected")).toBe("true");
    expect(view.root.querySelector('#record-details dd[data-field="seq"]')?.textContent).toBe("2");
    key(row("2"), "ArrowUp");
    key(row("3"), " ");
    expect(row("3").getAttribute("aria-selected")).toBe("true");
    expect(row("2").getAttribute("aria-selected")).toBe("false");
    // A live record re-renders the table: the keyboard stays on its row.
    view.add({ seq: 4, ts: now, event: { kind: "tool_call", client: "c1", tool: "read_project", decision: "allowed", outcome: "ok" } });
    expect(document.activeElement).toBe(row("3"));
  });

  it("shows a record as labelled fields, with Raw as the other tab", async () => {
    const view = activityView(api(base));
    await view.refresh();
    view.root.querySelector<HTMLElement>('tr.record-row[data-seq="2"]')!.click();
    const fieldsTab = view.root.querySelector<HTMLButtonElement>("#record-fields-tab")!;
    const rawTab = view.root.querySelector<HTMLButtonElement>("#record-raw-toggle")!;
    const fields = view.root.querySelector<HTMLElement>("#record-fields")!;
    const raw = view.root.querySelector<HTMLElement>("#record-raw")!;
    expect(rawTab.textContent).toBe("Raw");
    expect([fields.hidden, raw.hidden, fieldsTab.getAttribute("aria-pressed")]).toEqual([false, true, "true"]);
    rawTab.click();
    expect([fields.hidden, raw.hidden, fieldsTab.getAttribute("aria-pressed")]).toEqual([true, false, "false"]);
    fieldsTab.click();
    expect([fields.hidden, raw.hidden, rawTab.getAttribute("aria-expanded")]).toEqual([false, true, "false"]);
  });

  it("names the chart for screen readers with what it shows", async () => {
    const view = activityView(api(base));
    await view.refresh();
    const svg = view.root.querySelector("svg.chart")!;
    expect(svg.getAttribute("role")).toBe("img");
    expect(svg.getAttribute("aria-label")).toContain("Tool calls per minute over the last 30 minutes");
    expect(svg.getAttribute("aria-label")).toContain("c1 2");
    expect(svg.querySelector("title")?.textContent).toBe(svg.getAttribute("aria-label"));
  });
});

describe("activity folds what belongs to one call, and sums up today", () => {
  const api = (list: AuditRecordView[], verify: () => Promise<unknown> = () => Promise.resolve({ intact: true, records: list.length, files: 1 })) =>
    ({ auditTail: vi.fn(async () => [...list]), auditVerify: vi.fn(verify), auditExport: vi.fn() }) as unknown as Api;
  const seqs = (root: HTMLElement) => [...root.querySelectorAll<HTMLElement>("tr.record-row")].map((r) => r.dataset.seq);
  const t = (ago: number) => now - ago;
  const session: AuditRecordView[] = [
    { seq: 1, ts: t(9000), event: { kind: "authentication", client: "c1", ok: true, session: "s1", host: "/usr/bin/claude-desktop", method: "host" } },
    { seq: 2, ts: t(8000), event: { kind: "tool_call", client: "c1", session: "s1", tool: "read_project", scope: "qc:projects:read", decision: "allowed", outcome: "ok", args_digest: "d0" } },
    { seq: 3, ts: t(7000), event: { kind: "approval", client: "c1", tool: "delete_project", decision: "approved", args_digest: "d1", approval: "a1" } },
    { seq: 4, ts: t(6000), event: { kind: "tool_call", client: "c1", session: "s1", tool: "delete_project", scope: "qc:projects:delete", decision: "approved", outcome: "ok", args_digest: "d1" } },
    // Same arguments again, allowed without a question: nothing left to fold into it.
    { seq: 5, ts: t(5000), event: { kind: "tool_call", client: "c1", session: "s1", tool: "delete_project", scope: "qc:projects:delete", decision: "allowed_for_session", outcome: "ok", args_digest: "d1" } },
    // A session that made no call keeps its own line, as does a refused connection.
    { seq: 6, ts: t(4000), event: { kind: "authentication", client: "c2", ok: true, session: "s2", host: "/usr/bin/node", method: "host" } },
    { seq: 7, ts: t(3000), event: { kind: "authentication", client: "c3", ok: false, reason: "unknown client" } },
  ];

  it("shows one line per call, its sign-in and your answer folded into it and one click away", async () => {
    const view = activityView(api(session));
    await view.refresh();
    expect(seqs(view.root)).toEqual(["7", "6", "5", "4", "2"]);
    const call = view.root.querySelector<HTMLElement>('tr.record-row[data-seq="4"]')!;
    expect(call.querySelector(".folded")?.textContent).toBe(" · you answered");
    expect(view.root.querySelector('tr.record-row[data-seq="2"] .folded')?.textContent).toBe(" · signed in");
    call.click();
    const details = view.root.querySelector<HTMLElement>("#record-details")!;
    expect([...details.querySelectorAll("h4.folded-heading")].map((e) => e.textContent)).toEqual(["Your answer (record 3)"]);
    expect([...details.querySelectorAll<HTMLElement>("dl.record-fields")].map((d) => d.dataset.seq)).toEqual(["4", "3"]);
    expect(details.querySelector('dl[data-seq="3"] dd[data-field="approval"]')?.textContent).toBe("a1");
    expect(JSON.parse(details.querySelector("#record-raw")!.textContent!).map((r: AuditRecordView) => r.seq)).toEqual([3, 4]);
  });

  it("sums up today on a card, marks what needs a look, and can show today alone", async () => {
    const yesterday = now - 86_400_000 * 2;
    const list: AuditRecordView[] = [
      { seq: 1, ts: yesterday, event: { kind: "tool_call", client: "c1", tool: "read_project", scope: "qc:projects:read", decision: "denied", outcome: "approval_denied" } },
      ...session.map((r) => ({ ...r, seq: r.seq + 1 })),
      { seq: 9, ts: t(2500), event: { kind: "tool_call", client: "c1", tool: "stop_live_algorithm", scope: "qc:live:execute", decision: "timed_out", outcome: "timed_out" } },
      { seq: 10, ts: t(2000), event: { kind: "tool_call", client: "c1", tool: "delete_project", scope: "qc:projects:delete", outcome: "missing_scope" } },
      { seq: 11, ts: t(1000), event: { kind: "approval", client: "c4", tool: null, decision: "approved", args_digest: "" } },
    ];
    const view = activityView(api(list));
    await view.refresh();
    const card = view.root.querySelector<HTMLElement>("#today-card")!;
    const stat = (key: string) => card.querySelector<HTMLElement>(`[data-stat="${key}"]`)!;
    const value = (key: string) => stat(key).querySelector("dd")!.childNodes[0].textContent;
    expect(card.getAttribute("aria-labelledby")).toBe("today-heading");
    expect([value("calls"), value("denied"), value("timed_out"), value("refused"), value("refused_connections"), value("new_hosts")]).toEqual(["5", "0", "1", "1", "1", "1"]);
    expect(stat("denied").classList.contains("alert")).toBe(false);
    expect(stat("timed_out").classList.contains("alert")).toBe(true);
    expect(stat("timed_out").textContent).toContain("needs a look");
    expect(stat("calls").classList.contains("alert")).toBe(false);
    expect(stat("first_live_call").textContent).toMatch(/^First live-trading call: Stop live algorithm by c1 at /);
    expect(stat("first_live_call").classList.contains("alert")).toBe(true);
    expect(stat("chain").textContent).toContain("Audit chain intact");
    const today = view.root.querySelector<HTMLInputElement>("#activity-today")!;
    expect(seqs(view.root)).toContain("1");
    today.checked = true;
    today.dispatchEvent(new Event("change"));
    expect(seqs(view.root)).not.toContain("1");
    expect(view.root.querySelectorAll("tr.day-header")).toHaveLength(1);
  });

  it("says on the card, in words, when the chain is broken", async () => {
    const view = activityView(api(session, () => Promise.reject(new Error("record 2 was edited"))));
    await view.refresh();
    const chain = view.root.querySelector<HTMLElement>('#today-card [data-stat="chain"]')!;
    expect(chain.textContent).toBe("Audit chain BROKEN: record 2 was edited");
    expect(chain.classList.contains("alert")).toBe(true);
  });
});
