import { describe, expect, it } from "vitest";
import type { AuditRecordView } from "./bindings";
import { callsOverTime, choices, countdown, dayKey, dayLabel, duration, isSystem, matches, recordFields, recordLine, timeAgo } from "./format";

const t0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const rec = (seq: number, ts: number, event: Record<string, unknown>): AuditRecordView => ({ seq, ts, event });

describe("records", () => {
  it("reads tool calls, refusals, approvals and authentications", () => {
    const call = recordLine(rec(1, t0, { kind: "tool_call", client: "c1", tool: "read_project", scope: "qc:projects:read", decision: "allowed", outcome: "ok" }));
    expect(call).toMatchObject({ kind: "tool_call", client: "c1", tool: "read_project", decision: "allowed", outcome: "ok" });
    const paused = recordLine(rec(2, t0, { kind: "tool_call", client: "c1", tool: "read_project", outcome: "paused", error: "access is paused in Keybridge" }));
    expect(paused.decision).toBe("refused");
    expect(paused.text).toContain("access is paused");
    const auth = recordLine(rec(3, t0, { kind: "authentication", client: "c1", ok: false, reason: "pairing refused" }));
    expect(auth.outcome).toBe("refused");
    expect(auth.text).toBe("refused: pairing refused");
    expect(recordLine(rec(4, t0, { kind: "admin", action: "client_added" })).text).toBe("client added");
  });

  it("filters by client, tool and decision, and offers only values that occur", () => {
    const lines = [
      recordLine(rec(1, t0, { kind: "tool_call", client: "a", tool: "read_project", decision: "allowed", outcome: "ok" })),
      recordLine(rec(2, t0, { kind: "tool_call", client: "b", tool: "stop_live_algorithm", decision: "denied", outcome: "approval_denied" })),
      recordLine(rec(3, t0, { kind: "admin", action: "paused" })),
    ];
    expect(choices(lines, "client")).toEqual(["a", "b"]);
    expect(choices(lines, "decision")).toEqual(["allowed", "denied"]);
    expect(lines.filter((l) => matches(l, { client: "b", tool: "", decision: "" })).map((l) => l.seq)).toEqual([2]);
    expect(lines.filter((l) => matches(l, { client: "", tool: "", decision: "allowed" })).map((l) => l.seq)).toEqual([1]);
    expect(lines.filter((l) => matches(l, { client: "", tool: "", decision: "" }))).toHaveLength(3);
  });

  it("counts tool calls per client per minute, ignoring other records and old ones", () => {
    const lines = [
      rec(1, t0 - 30_000, { kind: "tool_call", client: "a" }),
      rec(2, t0 - 20_000, { kind: "tool_call", client: "a" }),
      rec(3, t0 - 90_000, { kind: "tool_call", client: "b" }),
      rec(4, t0 - 10_000, { kind: "authentication", client: "a", ok: true }),
      rec(5, t0 - 3_600_000, { kind: "tool_call", client: "a" }),
    ].map(recordLine);
    const series = callsOverTime(lines, t0, 60_000, 30);
    expect(series.starts).toHaveLength(30);
    expect(series.byClient.get("a")?.reduce((x, y) => x + y)).toBe(2);
    expect(series.byClient.get("a")?.[29]).toBe(2);
    expect(series.byClient.get("b")?.[28]).toBe(1);
    expect(series.max).toBe(2);
  });
});

describe("time", () => {
  it("formats countdowns and ages", () => {
    expect(countdown(65)).toBe("1:05");
    expect(countdown(0)).toBe("0:00");
    expect(timeAgo(null, t0)).toBe("never");
    expect(timeAgo(t0 / 1000 - 5, t0)).toBe("just now");
    expect(timeAgo(t0 / 1000 - 125, t0)).toBe("2 min ago");
    expect(timeAgo(t0 / 1000 - 7200, t0)).toBe("2 h ago");
  });
});

describe("record fields", () => {
  it("labels known fields in a readable order, in words, and keeps unknown ones under their key", () => {
    const fields = recordFields(rec(7, t0, {
      outcome: "approval_denied",
      args_digest: "d1g3st",
      client: "c1",
      kind: "tool_call",
      latency_us: 2500,
      args: { projectId: 123 },
      scopes: [],
      ok: false,
      brand_new: "kept",
    }));
    expect(fields.map((f) => f.key)).toEqual(["seq", "ts", "kind", "client", "ok", "outcome", "latency_us", "args_digest", "args", "scopes", "brand_new"]);
    const by = (key: string) => fields.find((f) => f.key === key)!;
    expect(by("seq")).toMatchObject({ label: "Sequence", value: "7" });
    expect(by("kind")).toMatchObject({ label: "Event", value: "tool call" });
    expect(by("outcome").value).toBe("approval denied");
    expect(by("args_digest")).toMatchObject({ label: "Arguments digest", value: "d1g3st" });
    expect(by("latency_us")).toMatchObject({ label: "Duration", value: "2.5 ms" });
    expect(by("args").value).toEqual({ projectId: 123 });
    expect(by("scopes").value).toBe("none");
    expect(by("ok").value).toBe("no");
    expect(by("brand_new")).toMatchObject({ label: "brand_new", value: "kept" });
    expect(by("ts").value).toMatch(/\d/);
  });

  it("says durations in the unit that reads best", () => {
    expect(duration(900)).toBe("900 µs");
    expect(duration(12_345)).toBe("12.3 ms");
    expect(duration(2_500_000)).toBe("2.50 s");
  });
});

describe("the feed's filters", () => {
  const lines = [
    recordLine(rec(1, t0, { kind: "broker_started", version: "0.3.1" })),
    recordLine(rec(2, t0, { kind: "tool_call", client: "claude-1", tool: "stop_live_algorithm", decision: "denied", outcome: "approval_denied", error: "you denied this call" })),
    recordLine(rec(3, t0, { kind: "admin", action: "paused" })),
  ];
  const all = { client: "", tool: "", decision: "" };

  it("hides the broker's own records only when asked to", () => {
    expect(isSystem(lines[0])).toBe(true);
    expect(isSystem(lines[2])).toBe(false);
    expect(lines.filter((l) => matches(l, { ...all, system: false })).map((l) => l.seq)).toEqual([2, 3]);
    expect(lines.filter((l) => matches(l, { ...all, system: true }))).toHaveLength(3);
  });

  it("finds every word of a search, in any case, by tool name in words too", () => {
    const found = (search: string) => lines.filter((l) => matches(l, { ...all, search })).map((l) => l.seq);
    expect(found("Stop LIVE")).toEqual([2]);
    expect(found("claude denied")).toEqual([2]);
    expect(found("paused")).toEqual([3]);
    expect(found("  ")).toEqual([1, 2, 3]);
    expect(found("claude paused")).toEqual([]);
  });

  it("heads each day with its date, and today and yesterday by name", () => {
    const noon = new Date(2026, 10, 23, 12).getTime();
    expect(dayLabel(noon, noon)).toMatch(/^Today · .*2026/);
    expect(dayLabel(noon - 86_400_000, noon)).toMatch(/^Yesterday · .*2026/);
    expect(dayLabel(noon - 3 * 86_400_000, noon)).not.toMatch(/Today|Yesterday/);
    expect(dayKey(noon)).toBe(dayKey(new Date(2026, 10, 23, 0, 1).getTime()));
    expect(dayKey(noon)).not.toBe(dayKey(new Date(2026, 10, 24, 0, 1).getTime()));
  });
});
