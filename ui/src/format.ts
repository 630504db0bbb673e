// Pure functions behind the views: time, records, filters and the activity chart.
import type { AuditRecordView } from "./bindings";
import { friendlyTool } from "./tools";

export function secondsLeft(expiresUnixSecs: number, nowMs: number): number {
  return Math.max(0, Math.ceil(expiresUnixSecs - nowMs / 1000));
}

export function countdown(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return `${m}:${String(s).padStart(2, "0")}`;
}

export function timeAgo(unixSecs: number | null, nowMs: number): string {
  if (unixSecs === null) return "never";
  const ago = Math.max(0, Math.round(nowMs / 1000 - unixSecs));
  if (ago < 10) return "just now";
  if (ago < 60) return `${ago} s ago`;
  if (ago < 3600) return `${Math.floor(ago / 60)} min ago`;
  if (ago < 86400) return `${Math.floor(ago / 3600)} h ago`;
  return `${Math.floor(ago / 86400)} d ago`;
}

/** A day header: "Today", "Yesterday", or the weekday, with the full date always. */
export function dayLabel(ms: number, nowMs: number): string {
  const day = new Date(ms);
  const date = day.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
  const startOf = (d: Date) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((startOf(new Date(nowMs)) - startOf(day)) / 86_400_000);
  return days === 0 ? `Today · ${date}` : days === 1 ? `Yesterday · ${date}` : date;
}

/** The local calendar day of a time, as a key to group records by. */
export function dayKey(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

export function clock(ms: number): string {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

/** The fields of a record the activity view shows and filters on. */
export interface RecordLine {
  seq: number;
  ts: number;
  kind: string;
  client: string;
  tool: string;
  /** The scope a tool call needed, e.g. `qc:live:execute`; empty for other records. */
  scope: string;
  decision: string;
  outcome: string;
  text: string;
}

function str(value: unknown): string {
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : "";
}

export function recordLine(record: AuditRecordView): RecordLine {
  const e = record.event;
  const kind = str(e.kind);
  const client = str(e.client);
  const tool = str(e.tool);
  let decision = str(e.decision);
  let outcome = str(e.outcome);
  let text: string;
  switch (kind) {
    case "tool_call":
      // Refused before any policy applied: no scope, paused, revoked, bad arguments.
      if (!decision && outcome && outcome !== "ok") decision = "refused";
      text = e.error ? `${friendlyTool(tool)}: ${str(e.error)}` : `${friendlyTool(tool)} (${str(e.scope)})`;
      break;
    case "approval":
      text = `${tool ? friendlyTool(tool) : "Connection"} ${decision.replace(/_/g, " ")}`;
      break;
    case "authentication":
      outcome = e.ok === true ? "ok" : "refused";
      text = e.ok === true ? `session from ${str(e.host) || "a client key"}` : `refused: ${str(e.reason)}`;
      break;
    case "admin":
      text = str(e.action).replace(/_/g, " ");
      break;
    default:
      text = kind.replace(/_/g, " ");
  }
  return { seq: record.seq, ts: record.ts, kind, client, tool, scope: str(e.scope), decision, outcome, text };
}

export interface Filters {
  client: string;
  tool: string;
  decision: string;
  /** Words that must all appear in the record's line, in any case. */
  search?: string;
  /** Show the broker's own bookkeeping too (starts, stops, tokens, look-ups). */
  system?: boolean;
}

// What the broker writes for itself: nobody did these, and they drown what clients did.
const SYSTEM_KINDS = new Set(["broker_started", "broker_stopped", "token_minted", "broker_lookup"]);

export function isSystem(line: RecordLine): boolean {
  return SYSTEM_KINDS.has(line.kind);
}

function haystack(line: RecordLine): string {
  return [line.client, line.tool, friendlyTool(line.tool), line.decision, line.outcome, line.kind.replace(/_/g, " "), line.text].join(" ").toLowerCase();
}

export function matches(line: RecordLine, filters: Filters): boolean {
  const words = (filters.search ?? "").toLowerCase().split(/\s+/).filter(Boolean);
  const text = words.length ? haystack(line) : "";
  return (
    (!filters.client || line.client === filters.client) &&
    (!filters.tool || line.tool === filters.tool) &&
    (!filters.decision || line.decision === filters.decision) &&
    (filters.system !== false || !isSystem(line)) &&
    words.every((w) => text.includes(w))
  );
}

/** Distinct non-empty values of a field, sorted, for a filter's choices. */
export function choices(lines: RecordLine[], key: "client" | "tool" | "decision"): string[] {
  return [...new Set(lines.map((l) => l[key]).filter(Boolean))].sort();
}

export interface Series {
  /** Start of each bucket, Unix ms. */
  starts: number[];
  byClient: Map<string, number[]>;
  max: number;
}

/** Tool calls per client in `buckets` buckets of `bucketMs`, ending now. */
export function callsOverTime(lines: RecordLine[], nowMs: number, bucketMs: number, buckets: number): Series {
  const end = Math.ceil(nowMs / bucketMs) * bucketMs;
  const start = end - bucketMs * buckets;
  const starts = Array.from({ length: buckets }, (_, i) => start + i * bucketMs);
  const byClient = new Map<string, number[]>();
  let max = 0;
  for (const line of lines) {
    if (line.kind !== "tool_call" || line.ts < start || line.ts >= end) continue;
    const counts = byClient.get(line.client) ?? new Array<number>(buckets).fill(0);
    const i = Math.floor((line.ts - start) / bucketMs);
    counts[i] += 1;
    max = Math.max(max, counts[i]);
    byClient.set(line.client, counts);
  }
  return { starts, byClient, max };
}

/** One labelled field of a record's details: `value` is text, or structured data to show as JSON. */
export interface RecordField {
  key: string;
  label: string;
  value: string | object;
}

// Friendly names for the fields the broker writes; a field not listed here keeps its raw key, so
// a record from a newer broker still shows everything it holds.
const FIELD_LABELS: Record<string, string> = {
  seq: "Sequence",
  ts: "Time",
  kind: "Event",
  action: "Action",
  client: "Client",
  session: "Session",
  account: "Account",
  host: "Host",
  method: "Method",
  ok: "Accepted",
  reason: "Reason",
  tool: "Tool",
  scope: "Scope",
  policy: "Policy",
  decision: "Decision",
  outcome: "Outcome",
  error: "Error",
  upstream: "QuantConnect answer",
  latency_us: "Duration",
  approval: "Approval",
  minutes: "Minutes",
  args_digest: "Arguments digest",
  args: "Arguments",
  jti: "Token id",
  expires: "Expires",
  scopes: "Scopes",
  mode: "Pairing",
  new_name: "New name",
  clients: "Clients",
  checked: "Checked with QuantConnect",
  existed: "Existed",
  approvals_denied: "Approvals denied",
  kid: "Signing key",
  file: "File",
  settings: "Settings",
  quantconnect: "QuantConnect",
};
// The log stores fields in any order; details read best as who, what, then how it ended.
const FIELD_ORDER = Object.keys(FIELD_LABELS);

// Words, not identifiers: "approval_denied" reads as "approval denied".
const WORDY = new Set(["kind", "action", "decision", "outcome", "policy", "upstream"]);

function dateTime(ms: number): string {
  return new Date(ms).toLocaleString([], { dateStyle: "medium", timeStyle: "medium", hour12: false });
}

export function duration(micros: number): string {
  if (micros < 1000) return `${micros} µs`;
  if (micros < 1_000_000) return `${(micros / 1000).toFixed(1)} ms`;
  return `${(micros / 1_000_000).toFixed(2)} s`;
}

function fieldValue(key: string, value: unknown): string | object {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") {
    if (key === "latency_us") return duration(value);
    if (key === "expires") return dateTime(value * 1000);
    return String(value);
  }
  if (typeof value === "string") return WORDY.has(key) ? value.replace(/_/g, " ") : value;
  if (Array.isArray(value) && value.length === 0) return "none";
  if (Array.isArray(value) && value.every((v) => typeof v === "string" || typeof v === "number")) return value.join(", ");
  return value as object;
}

/** Every field of a record, labelled: sequence and time first, then the event's own fields. */
export function recordFields(record: AuditRecordView): RecordField[] {
  const fields: RecordField[] = [
    { key: "seq", label: FIELD_LABELS.seq, value: String(record.seq) },
    { key: "ts", label: FIELD_LABELS.ts, value: dateTime(record.ts) },
  ];
  const rank = (key: string) => {
    const i = FIELD_ORDER.indexOf(key);
    return i < 0 ? FIELD_ORDER.length : i;
  };
  const entries = Object.entries(record.event).sort(([a], [b]) => rank(a) - rank(b));
  for (const [key, value] of entries) {
    fields.push({ key, label: FIELD_LABELS[key] ?? key, value: fieldValue(key, value) });
  }
  return fields;
}

/** A line of the feed: one thing a client did, with the records folded into it. */
export interface FeedLine extends RecordLine {
  /** Sequence numbers of the records this line stands for besides its own, oldest first. */
  folded: number[];
}

function field(record: AuditRecordView, key: string): string {
  return str(record.event[key]);
}

/**
 * One line per thing a client did. A session's successful authentication is folded into the
 * session's first call, and the human's answer into the call it answered (same client, tool and
 * arguments digest). A record with nothing to fold into keeps its own line: a session that made
 * no call, a pairing answer, a refused connection.
 */
export function feed(records: AuditRecordView[]): FeedLine[] {
  const into = new Map<number, number>();
  const sessionStart = new Map<string, number>();
  const answers = new Map<string, number[]>();
  const answerKey = (r: AuditRecordView) => [field(r, "client"), field(r, "tool"), field(r, "args_digest")].join("\u0000");
  for (const record of records) {
    const kind = field(record, "kind");
    if (kind === "authentication" && record.event.ok === true && field(record, "session")) {
      sessionStart.set(field(record, "session"), record.seq);
    } else if (kind === "approval" && field(record, "tool") && field(record, "args_digest")) {
      const key = answerKey(record);
      answers.set(key, [...(answers.get(key) ?? []), record.seq]);
    } else if (kind === "tool_call") {
      const session = field(record, "session");
      const start = sessionStart.get(session);
      if (start !== undefined) {
        into.set(start, record.seq);
        sessionStart.delete(session);
      }
      const waiting = answers.get(answerKey(record));
      const answer = waiting?.shift();
      if (answer !== undefined) into.set(answer, record.seq);
    }
  }
  const folded = new Map<number, number[]>();
  for (const [seq, host] of into) folded.set(host, [...(folded.get(host) ?? []), seq].sort((a, b) => a - b));
  return records.filter((r) => !into.has(r.seq)).map((r) => ({ ...recordLine(r), folded: folded.get(r.seq) ?? [] }));
}

/** What happened today, for the card above the feed; counts that call for a look come first. */
export interface TodaySummary {
  calls: number;
  denied: number;
  timedOut: number;
  /** Calls refused before anyone was asked: a missing scope, a limit, a pause, bad arguments. */
  refused: number;
  refusedConnections: number;
  /** Pairing answers that let a new program in. */
  newHosts: number;
  firstLiveCall: RecordLine | null;
}

export function todaySummary(lines: RecordLine[], nowMs: number): TodaySummary {
  const today = dayKey(nowMs);
  const summary: TodaySummary = { calls: 0, denied: 0, timedOut: 0, refused: 0, refusedConnections: 0, newHosts: 0, firstLiveCall: null };
  for (const line of lines) {
    if (dayKey(line.ts) !== today) continue;
    if (line.kind === "tool_call") {
      summary.calls += 1;
      if (line.decision === "denied") summary.denied += 1;
      else if (line.decision === "timed_out") summary.timedOut += 1;
      else if (line.decision === "refused") summary.refused += 1;
      if (line.scope.startsWith("qc:live:") && (!summary.firstLiveCall || line.ts < summary.firstLiveCall.ts)) summary.firstLiveCall = line;
    } else if (line.kind === "authentication" && line.outcome === "refused") {
      summary.refusedConnections += 1;
    } else if (line.kind === "approval" && !line.tool && line.decision.startsWith("approved")) {
      summary.newHosts += 1;
    }
  }
  return summary;
}
