// Activity: the live audit log with filters, record details, the chain's verification, export,
// and calls over time per client.
import type { AuditRecordView } from "../bindings";
import { button, fill, h, notice } from "../dom";
import { type Filters, type RecordLine, type Series, callsOverTime, choices, clock, matches, recordFields, recordLine } from "../format";
import type { Api } from "../ipc";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#14807a", "#d6821a", "#5a67d8", "#c0392b", "#6b8e23", "#8e44ad"];

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
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  const n = series.starts.length;
  const x = (i: number) => pad + (i * (width - 2 * pad)) / Math.max(1, n - 1);
  const y = (v: number) => height - pad - (v * (height - 2 * pad)) / Math.max(1, series.max);
  root.appendChild(svg("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "axis" }));
  const legend = h("div", { class: "legend" });
  [...series.byClient.entries()].forEach(([client, counts], k) => {
    const color = COLORS[k % COLORS.length];
    const points = counts.map((c, i) => `${x(i).toFixed(1)},${y(c).toFixed(1)}`).join(" ");
    root.appendChild(svg("polyline", { points, fill: "none", stroke: color, "stroke-width": 2 }));
    legend.appendChild(h("span", { class: "key" }, h("i", { attrs: { style: `background:${color}` } }), `${client || "unknown"}: ${counts.reduce((a, b) => a + b, 0)}`));
  });
  const label = svg("text", { x: pad, y: 14, class: "chart-label" });
  label.textContent = series.byClient.size ? `calls per minute, last ${n} min (peak ${series.max})` : "no tool calls in the last 30 minutes";
  root.appendChild(label);
  const box = h("div", { class: "chart-box" });
  box.appendChild(root);
  box.appendChild(legend);
  return box;
}

function select(id: string, label: string, values: string[], current: string, onChange: (v: string) => void): HTMLElement {
  const el = h("select", { id, attrs: { "aria-label": label }, on: { change: () => onChange(el.value) } }, h("option", { attrs: { value: "" } }, `All ${label}`), ...values.map((v) => h("option", { attrs: { value: v } }, v)));
  el.value = current;
  return el;
}

// Four columns fit the default window beside the details: the sequence number and the raw kind
// live in the details, and the kind is shown small above what happened.
export function recordRow(line: RecordLine, onSelect: () => void): HTMLElement {
  const state = line.outcome && line.outcome !== "ok" ? "bad" : line.decision === "denied" || line.decision === "timed_out" ? "bad" : "";
  return h(
    "tr",
    { class: `record-row ${state}`, data: { seq: String(line.seq), kind: line.kind, tool: line.tool, decision: line.decision }, on: { click: onSelect } },
    h("td", { class: "mono time" }, clock(line.ts)),
    h("td", { class: "client" }, line.client),
    h("td", { class: "decision" }, line.decision ? h("span", { class: `pill ${line.decision}` }, line.decision.replace(/_/g, " ")) : ""),
    h("td", { class: "text" }, h("span", { class: "kind" }, line.kind.replace(/_/g, " ")), line.text),
  );
}

/** A record as labelled fields, with its exact JSON on demand. */
export function recordDetails(record: AuditRecordView): HTMLElement[] {
  const raw = h("pre", { id: "record-raw", attrs: { hidden: "" } }, JSON.stringify(record, null, 2));
  const toggle = button("Raw JSON", () => {
    raw.hidden = !raw.hidden;
    toggle.setAttribute("aria-expanded", String(!raw.hidden));
    toggle.textContent = raw.hidden ? "Raw JSON" : "Hide raw JSON";
  }, "secondary small", "record-raw-toggle");
  toggle.setAttribute("aria-expanded", "false");
  toggle.setAttribute("aria-controls", "record-raw");
  return [
    h("h3", null, `Record ${record.seq}`),
    h("dl", { class: "facts record-fields" }, ...recordFields(record).flatMap((f) => [
      h("dt", null, f.label),
      h("dd", { data: { field: f.key } }, typeof f.value === "string" ? f.value : h("pre", null, JSON.stringify(f.value, null, 2))),
    ])),
    h("div", { class: "actions" }, toggle),
    raw,
  ];
}

export function activityView(api: Api) {
  const root = h("section", { class: "view", id: "view-activity" });
  let records: AuditRecordView[] = [];
  const filters: Filters = { client: "", tool: "", decision: "" };
  let selected: number | null = null;
  const verifyBox = h("div", { class: "verify", id: "chain-status" });
  const exportBox = h("div", { class: "export-status" });
  const chartBox = h("div");
  const filterBar = h("div", { class: "filters" });
  const body = h("tbody");
  const details = h("div", { class: "record-details", id: "record-details" }, h("p", { class: "muted" }, "Select a record to see all of it."));

  function render() {
    const lines = records.map(recordLine);
    fill(
      filterBar,
      select("filter-client", "clients", choices(lines, "client"), filters.client, (v) => ((filters.client = v), render())),
      select("filter-tool", "tools", choices(lines, "tool"), filters.tool, (v) => ((filters.tool = v), render())),
      select("filter-decision", "decisions", choices(lines, "decision"), filters.decision, (v) => ((filters.decision = v), render())),
    );
    const shown = lines.filter((l) => matches(l, filters)).reverse();
    fill(body, ...shown.slice(0, 400).map((line) => {
      const row = recordRow(line, () => {
        const record = records.find((r) => r.seq === line.seq);
        if (!record) return;
        selected = record.seq;
        for (const r of body.querySelectorAll(".record-row.selected")) r.classList.remove("selected");
        row.classList.add("selected");
        fill(details, ...recordDetails(record));
      });
      // A live record re-renders the table: the row whose details are shown stays marked.
      if (line.seq === selected) row.classList.add("selected");
      return row;
    }));
    fill(chartBox, chart(callsOverTime(lines, Date.now(), 60_000, 30)));
  }

  async function verify() {
    fill(verifyBox, h("span", { class: "muted" }, "checking the chain…"));
    try {
      const v = await api.auditVerify();
      fill(verifyBox, h("span", { class: "pill ok" }, "chain intact"), ` ${v.records} records in ${v.files} file${v.files === 1 ? "" : "s"}, none edited, removed or reordered`);
    } catch (e) {
      fill(verifyBox, h("span", { class: "pill bad" }, "chain broken"), " ", (e as Error).message);
    }
  }

  async function refresh() {
    try {
      records = await api.auditTail(2000);
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
    chartBox,
    filterBar,
    h("div", { class: "split" },
      h("div", { class: "table-wrap" }, h("table", { class: "records" },
        h("colgroup", null, h("col", { class: "time" }), h("col", { class: "client" }), h("col", { class: "decision" }), h("col", { class: "text" })),
        h("thead", null, h("tr", null, h("th", null, "Time"), h("th", null, "Client"), h("th", null, "Decision"), h("th", null, "What"))), body)),
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
      render();
    },
  };
}
