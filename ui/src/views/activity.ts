// Activity: the live audit log with filters, search, record details, the chain's verification,
// export, and calls over time per client. Records read as a feed: friendly names, a header for
// each day, the broker's own bookkeeping hidden until asked for.
import type { AuditRecordView } from "../bindings";
import { button, fill, h, notice } from "../dom";
import { type FeedLine, type Filters, type RecordLine, type Series, type TodaySummary, callsOverTime, choices, clock, dayKey, dayLabel, feed, isSystem, matches, recordFields, recordLine, todaySummary } from "../format";
import type { Api } from "../ipc";
import { friendlyTool } from "../tools";

const SVG = "http://www.w3.org/2000/svg";
// Chart lines tell clients apart, nothing more: none of the colours that carry a meaning elsewhere.
const COLORS = ["#14807a", "#6d5bd0", "#2f6fb0", "#8a6d1f", "#4d7c0f", "#a23b72"];
/** How many rows the table shows; the log keeps everything, the export has it all. */
export const ROW_CAP = 400;
/** How many records the view loads from the end of the log. */
export const TAIL = 2000;

function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** Calls per minute for the last 30 minutes, one line per client. */
export function chart(series: Series): HTMLElement {
  const width = 900;
  const height = 120;
  const pad = 24;
  const n = series.starts.length;
  const totals = [...series.byClient.entries()].map(([client, counts]) => `${client || "unknown"} ${counts.reduce((a, b) => a + b, 0)}`);
  // The picture is for the eye; this sentence says the same to a screen reader.
  const said = series.byClient.size
    ? `Tool calls per minute over the last ${n} minutes, peak ${series.max}. Calls per client: ${totals.join(", ")}.`
    : `No tool calls in the last ${n} minutes.`;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": said });
  const title = svg("title", {});
  title.textContent = said;
  root.appendChild(title);
  const x = (i: number) => pad + (i * (width - 2 * pad)) / Math.max(1, n - 1);
  const y = (v: number) => height - pad - (v * (height - 2 * pad)) / Math.max(1, series.max);
  root.appendChild(svg("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "axis" }));
  const legend = h("div", { class: "legend" });
  [...series.byClient.entries()].forEach(([client, counts], k) => {
    const color = COLORS[k % COLORS.length];
    const points = counts.map((c, i) => `${x(i).toFixed(1)},${y(c).toFixed(1)}`).join(" ");
    root.appendChild(svg("polyline", { points, fill: "none", stroke: color, "stroke-width": 2 }));
    legend.appendChild(h("span", { class: "key" }, h("i", { attrs: { style: `background:${color}`, "aria-hidden": "true" } }), `${client || "unknown"}: ${counts.reduce((a, b) => a + b, 0)}`));
  });
  const label = svg("text", { x: pad, y: 14, class: "chart-label", "aria-hidden": "true" });
  label.textContent = series.byClient.size ? `calls per minute, last ${n} min (peak ${series.max})` : "no tool calls in the last 30 minutes";
  root.appendChild(label);
  const box = h("div", { class: "chart-box" });
  box.appendChild(root);
  box.appendChild(legend);
  return box;
}

function select(id: string, label: string, values: string[], current: string, onChange: (v: string) => void, name: (v: string) => string = (v) => v): HTMLElement {
  const el = h("select", { id, attrs: { "aria-label": `Filter by ${label.replace(/s$/, "")}` }, on: { change: () => onChange(el.value) } }, h("option", { attrs: { value: "" } }, `All ${label}`), ...values.map((v) => h("option", { attrs: { value: v } }, name(v))));
  el.value = current;
  return el;
}

// Four columns fit the default window beside the details: the sequence number and the raw kind
// live in the details, and the kind is shown small above what happened. A row is a stop on the
// keyboard: Enter or Space opens it, the arrows move between rows.
export function recordRow(line: RecordLine, onSelect: () => void, foldedNote = ""): HTMLElement {
  const state = line.outcome && line.outcome !== "ok" ? "bad" : line.decision === "denied" || line.decision === "timed_out" ? "bad" : "";
  const row = h(
    "tr",
    {
      class: `record-row ${state}`,
      data: { seq: String(line.seq), kind: line.kind, tool: line.tool, decision: line.decision },
      attrs: { tabindex: "0", "aria-selected": "false" },
      on: {
        click: onSelect,
        keydown: (e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            onSelect();
          } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
            e.preventDefault();
            const rows = [...(row.closest("tbody")?.querySelectorAll<HTMLElement>("tr.record-row") ?? [])];
            rows[rows.indexOf(row) + (e.key === "ArrowDown" ? 1 : -1)]?.focus();
          }
        },
      },
    },
    h("td", { class: "mono time" }, clock(line.ts)),
    h("td", { class: "client" }, line.client),
    h("td", { class: "decision" }, line.decision ? h("span", { class: `pill ${line.decision}` }, line.decision.replace(/_/g, " ")) : ""),
    h("td", { class: "text" }, h("span", { class: "kind" }, line.kind.replace(/_/g, " ")), line.text, foldedNote ? h("span", { class: "folded" }, ` · ${foldedNote}`) : ""),
  );
  return row;
}

/** How a folded record reads in its line and above its fields. */
function foldedName(record: AuditRecordView): string {
  return record.event.kind === "authentication" ? "signed in" : "you answered";
}

function fieldList(record: AuditRecordView, id?: string): HTMLElement {
  return h("dl", { class: "facts record-fields", id, data: { seq: String(record.seq) } }, ...recordFields(record).flatMap((f) => [
    h("dt", null, f.label),
    h("dd", { data: { field: f.key } }, f.key === "tool" && typeof f.value === "string" && f.value ? `${friendlyTool(f.value)} (${f.value})` : typeof f.value === "string" ? f.value : h("pre", null, JSON.stringify(f.value, null, 2))),
  ]));
}

/** The words a line adds for what it folds in, e.g. "signed in, you answered". */
export function foldedNote(folded: AuditRecordView[]): string {
  return [...new Set(folded.map(foldedName))].join(", ");
}

/**
 * A record as labelled fields, with its exact JSON one tab away; the records folded into its
 * line follow, each under a heading, so nothing the log holds is out of reach.
 */
export function recordDetails(record: AuditRecordView, folded: AuditRecordView[] = []): HTMLElement[] {
  const fields = h("div", { id: "record-fields" }, fieldList(record), ...folded.flatMap((f) => [
    h("h4", { class: "folded-heading" }, `${foldedName(f) === "signed in" ? "How the session began" : "Your answer"} (record ${f.seq})`),
    fieldList(f),
  ]));
  const raw = h("pre", { id: "record-raw", attrs: { hidden: "" } }, JSON.stringify(folded.length ? [...folded, record].sort((a, b) => a.seq - b.seq) : record, null, 2));
  // Two tabs over one panel; Raw keeps its disclosure semantics (expanded or not) so that a
  // screen reader says whether the JSON is showing.
  const showRaw = (on: boolean) => {
    raw.hidden = !on;
    fields.hidden = on;
    toggle.setAttribute("aria-expanded", String(on));
    fieldsTab.setAttribute("aria-pressed", String(!on));
    toggle.classList.toggle("current", on);
    fieldsTab.classList.toggle("current", !on);
  };
  const fieldsTab = button("Fields", () => showRaw(false), "tab current", "record-fields-tab");
  fieldsTab.setAttribute("aria-pressed", "true");
  const toggle = button("Raw", () => showRaw(raw.hidden), "tab", "record-raw-toggle");
  toggle.setAttribute("aria-expanded", "false");
  toggle.setAttribute("aria-controls", "record-raw");
  return [
    h("h3", null, `Record ${record.seq}`),
    h("div", { class: "tabs", attrs: { role: "group", "aria-label": "Show the record as" } }, fieldsTab, toggle),
    fields,
    raw,
  ];
}

/**
 * The "Today" card: what clients did today at a glance. What calls for a look (a denial, a
 * timeout, a refusal, a refused connection, a new program, live trading, a broken chain) is
 * marked, in words as well as colour.
 */
export function todayContent(today: TodaySummary, chain: { intact: boolean; text: string } | null): HTMLElement[] {
  const stat = (key: string, label: string, value: number, alarming: boolean) =>
    h("div", { class: `stat${alarming && value > 0 ? " alert" : ""}`, data: { stat: key } },
      h("dt", null, label),
      h("dd", null, String(value), alarming && value > 0 ? h("span", { class: "visually-hidden" }, " (needs a look)") : ""));
  const live = today.firstLiveCall;
  return [
    h("h3", { id: "today-heading" }, "Today"),
    h("dl", { class: "stats" },
      stat("calls", "Calls", today.calls, false),
      stat("denied", "Denied by you", today.denied, true),
      stat("timed_out", "Timed out", today.timedOut, true),
      stat("refused", "Refused by Keybridge", today.refused, true),
      stat("refused_connections", "Refused connections", today.refusedConnections, true),
      stat("new_hosts", "New programs paired", today.newHosts, true),
    ),
    h("p", { class: `today-line${live ? " alert" : ""}`, data: { stat: "first_live_call" } },
      live ? `First live-trading call: ${friendlyTool(live.tool)} by ${live.client || "a client"} at ${clock(live.ts)}.` : "No live-trading call today."),
    h("p", { class: `today-line${chain && !chain.intact ? " alert" : ""}`, data: { stat: "chain" } },
      chain === null ? "Audit chain: not checked yet." : chain.intact ? `Audit chain intact: ${chain.text}.` : `Audit chain BROKEN: ${chain.text}`),
  ];
}

export function activityView(api: Api) {
  const root = h("section", { class: "view", id: "view-activity" });
  let records: AuditRecordView[] = [];
  const filters: Filters = { client: "", tool: "", decision: "", search: "", system: false };
  let selected: number | null = null;
  const verifyBox = h("div", { class: "verify", id: "chain-status" });
  const exportBox = h("div", { class: "export-status" });
  const chartBox = h("div");
  const filterBar = h("div", { class: "filters" });
  const capNote = h("p", { class: "cap-note muted", id: "row-cap", attrs: { role: "status", hidden: "" } });
  const body = h("tbody");
  const details = h("div", { class: "record-details", id: "record-details", attrs: { "aria-live": "polite" } }, h("p", { class: "muted" }, "Select a record to see all of it."));
  const search = h("input", {
    id: "activity-search",
    attrs: { type: "search", placeholder: "client, tool, error…", autocomplete: "off", spellcheck: "false" },
    on: { input: () => ((filters.search = search.value), render()) },
  });
  const systemToggle = h("input", {
    id: "activity-system",
    attrs: { type: "checkbox" },
    on: { change: () => ((filters.system = systemToggle.checked), render()) },
  });
  let todayOnly = false;
  const todayToggle = h("input", {
    id: "activity-today",
    attrs: { type: "checkbox" },
    on: { change: () => ((todayOnly = todayToggle.checked), render()) },
  });
  const todayCard = h("section", { class: "card today", id: "today-card", attrs: { "aria-labelledby": "today-heading" } });
  let chain: { intact: boolean; text: string } | null = null;

  function render() {
    const nowMs = Date.now();
    const all = feed(records);
    const lines: FeedLine[] = todayOnly ? all.filter((l) => dayKey(l.ts) === dayKey(nowMs)) : all;
    const bySeq = new Map(records.map((r) => [r.seq, r]));
    const foldedOf = (line: FeedLine) => line.folded.map((seq) => bySeq.get(seq)).filter((r): r is AuditRecordView => !!r);
    fill(todayCard, ...todayContent(todaySummary(records.map(recordLine), nowMs), chain));
    fill(
      filterBar,
      select("filter-client", "clients", choices(lines, "client"), filters.client, (v) => ((filters.client = v), render())),
      select("filter-tool", "tools", choices(lines, "tool"), filters.tool, (v) => ((filters.tool = v), render()), friendlyTool),
      select("filter-decision", "decisions", choices(lines, "decision"), filters.decision, (v) => ((filters.decision = v), render()), (v) => v.replace(/_/g, " ")),
    );
    const shown = lines.filter((l) => matches(l, filters)).reverse();
    const hiddenSystem = filters.system ? 0 : lines.filter((l) => isSystem(l) && matches(l, { ...filters, system: true })).length;
    const rows: HTMLElement[] = [];
    let day = "";
    for (const line of shown.slice(0, ROW_CAP)) {
      if (dayKey(line.ts) !== day) {
        day = dayKey(line.ts);
        // A cell, not a header: the table's headers stay the four columns.
        rows.push(h("tr", { class: "day-header" }, h("td", { attrs: { colspan: "4" } }, h("strong", null, dayLabel(line.ts, nowMs)))));
      }
      const row = recordRow(line, () => {
        const record = records.find((r) => r.seq === line.seq);
        if (!record) return;
        selected = record.seq;
        for (const r of body.querySelectorAll(".record-row.selected")) {
          r.classList.remove("selected");
          r.setAttribute("aria-selected", "false");
        }
        row.classList.add("selected");
        row.setAttribute("aria-selected", "true");
        fill(details, ...recordDetails(record, foldedOf(line)));
      }, foldedNote(foldedOf(line)));
      // A live record re-renders the table: the row whose details are shown stays marked.
      if (line.seq === selected) {
        row.classList.add("selected");
        row.setAttribute("aria-selected", "true");
      }
      rows.push(row);
    }
    if (!shown.length) {
      const none = !records.length ? "No record yet." : todayOnly && !lines.length ? "Nothing yet today." : "No record matches.";
      rows.push(h("tr", { class: "no-rows" }, h("td", { attrs: { colspan: "4" } }, none)));
    }
    // A re-render must not drop the keyboard user's place in the table.
    const active = document.activeElement as HTMLElement | null;
    const focusedSeq = active && body.contains(active) && active.matches("tr.record-row") ? active.dataset.seq : undefined;
    fill(body, ...rows);
    if (focusedSeq) body.querySelector<HTMLElement>(`tr.record-row[data-seq="${focusedSeq}"]`)?.focus();
    const notes: string[] = [];
    if (shown.length > ROW_CAP) notes.push(`Showing the newest ${ROW_CAP} of ${shown.length} matching records; narrow the search or export the log for all of them.`);
    if (records.length >= TAIL) notes.push(`Only the last ${TAIL} records of the log are loaded here.`);
    if (hiddenSystem) notes.push(`${hiddenSystem} system record${hiddenSystem === 1 ? "" : "s"} hidden.`);
    capNote.textContent = notes.join(" ");
    capNote.hidden = !notes.length;
    fill(chartBox, chart(callsOverTime(lines, nowMs, 60_000, 30)));
  }

  async function verify() {
    fill(verifyBox, h("span", { class: "muted" }, "checking the chain…"));
    try {
      const v = await api.auditVerify();
      chain = { intact: true, text: `${v.records} records, none edited, removed or reordered` };
      fill(verifyBox, h("span", { class: "pill ok" }, "chain intact"), ` ${v.records} records in ${v.files} file${v.files === 1 ? "" : "s"}, none edited, removed or reordered`);
    } catch (e) {
      chain = { intact: false, text: (e as Error).message };
      fill(verifyBox, h("span", { class: "pill bad" }, "chain broken"), " ", (e as Error).message);
    }
    render();
  }

  async function refresh() {
    try {
      records = await api.auditTail(TAIL);
      render();
    } catch (e) {
      fill(body, h("tr", null, h("td", { attrs: { colspan: "4" } }, notice("error", (e as Error).message))));
    }
    await verify();
  }

  fill(
    root,
    h("h2", null, "Activity"),
    h("p", { class: "lead" }, "Every authentication, approval, change and tool call, as the tamper-evident audit log records it."),
    h("div", { class: "toolbar" }, verifyBox, button("Verify now", () => void verify(), "secondary"), button("Export…", async () => {
      try {
        const path = await api.auditExport();
        fill(exportBox, notice("ok", `Saved to ${path}`));
      } catch (e) {
        fill(exportBox, notice("error", (e as Error).message));
      }
    }, "secondary", "export-audit")),
    exportBox,
    todayCard,
    chartBox,
    h("div", { class: "feed-controls" },
      h("label", { class: "search" }, h("span", { class: "label" }, "Search"), search),
      filterBar,
      h("label", { class: "check" }, todayToggle, " Today only"),
      h("label", { class: "check" }, systemToggle, " Show system records")),
    capNote,
    h("div", { class: "split" },
      h("div", { class: "table-wrap", attrs: { tabindex: "-1" } }, h("table", { class: "records" },
        h("caption", { class: "visually-hidden" }, "Audit records, newest first, grouped by day"),
        h("colgroup", null, h("col", { class: "time" }), h("col", { class: "client" }), h("col", { class: "decision" }), h("col", { class: "text" })),
        h("thead", null, h("tr", null, h("th", { attrs: { scope: "col" } }, "Time"), h("th", { attrs: { scope: "col" } }, "Client"), h("th", { attrs: { scope: "col" } }, "Decision"), h("th", { attrs: { scope: "col" } }, "What"))), body)),
      details,
    ),
  );

  return {
    root,
    refresh,
    /** A record written just now. */
    add(record: AuditRecordView) {
      if (records.length && records[records.length - 1].seq >= record.seq) return;
      records.push(record);
      if (records.length > TAIL) records.shift();
      render();
    },
  };
}
