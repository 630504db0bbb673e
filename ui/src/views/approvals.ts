// Approvals: what a client waits for, in plain words, with the exact arguments on demand and a
// countdown to the automatic denial.
import type { ApprovalView } from "../bindings";
import { button, fill, h, notice } from "../dom";
import { countdown, secondsLeft } from "../format";
import type { Api, Decision } from "../ipc";

export interface ApprovalActions {
  decide(id: string, decision: Decision, minutes?: number): Promise<void>;
}

const ALLOW_MINUTES = [5, 15, 60];
/** A card's buttons wake after this long: a click meant for something else must not answer. */
export const ARM_DELAY_MS = 800;

/** One request: summary, who asks, for which account, the arguments, and the three answers. */
export function approvalCard(approval: ApprovalView, nowMs: number, actions: ApprovalActions, armDelayMs = ARM_DELAY_MS): HTMLElement {
  const pairing = approval.kind === "pairing";
  const timer = h("span", { class: "countdown", data: { expires: String(approval.expires) } });
  const tick = (now: number) => {
    const left = secondsLeft(approval.expires, now);
    timer.textContent = left > 0 ? `denied automatically in ${countdown(left)}` : "timed out: denied";
    timer.classList.toggle("urgent", left <= 10);
  };
  tick(nowMs);
  const minutes = h(
    "select",
    { class: "allow-minutes", attrs: { "aria-label": "minutes" } },
    ...ALLOW_MINUTES.map((m) => h("option", { attrs: { value: String(m) } }, `${m} min`)),
  );
  const status = h("div", { class: "card-status" });
  const answer = (decision: Decision, mins?: number) => {
    for (const b of card.querySelectorAll("button")) b.disabled = true;
    actions.decide(approval.id, decision, mins).catch((e: Error) => {
      fill(status, notice("error", e.message));
      for (const b of card.querySelectorAll("button")) b.disabled = false;
    });
  };
  const args = h(
    "details",
    { class: "arguments" },
    h("summary", null, pairing ? "Details" : "Exact arguments (brokerage credentials masked)"),
    h("pre", null, JSON.stringify(approval.arguments, null, 2)),
    h("p", { class: "digest" }, "Digest ", h("code", null, approval.arguments_digest.slice(0, 16)), " — this approval covers these arguments only."),
  );
  const card = h(
    "article",
    { class: `approval-card ${pairing ? "pairing" : "tool-call"}`, data: { id: approval.id } },
    h(
      "header",
      null,
      h("span", { class: "badge warn" }, pairing ? "New connection" : approval.scope ?? "approval"),
      h("strong", { class: "who" }, approval.client_name),
      pairing ? " wants to connect" : h("span", null, " wants to run ", h("code", { class: "tool" }, approval.tool ?? "")),
      timer,
    ),
    h("p", { class: "summary" }, approval.summary),
    h("dl", { class: "facts" }, h("dt", null, "Account"), h("dd", null, approval.account), h("dt", null, "Client"), h("dd", null, `${approval.client_name} (${approval.client_id})`)),
    args,
    h(
      "div",
      { class: "actions" },
      button(pairing ? "Allow connection" : "Approve", () => answer("approve"), "primary approve"),
      button("Deny", () => answer("deny"), "danger deny"),
      pairing
        ? null
        : h("span", { class: "allow-for" }, button("Allow this tool for", () => answer("allow_for", Number(minutes.value)), "secondary allow"), minutes),
    ),
    status,
  );
  (card as HTMLElement & { tick?: (now: number) => void }).tick = tick;
  if (armDelayMs > 0) {
    const buttons = [...card.querySelectorAll("button")];
    for (const b of buttons) b.disabled = true;
    setTimeout(() => {
      for (const b of buttons) b.disabled = false;
    }, armDelayMs);
  }
  return card;
}

/** The approvals view: every pending request, refreshed on each approval event. */
export function approvalsView(api: Api, onCount: (n: number) => void) {
  const root = h("section", { class: "view", id: "view-approvals" });
  const list = h("div", { class: "approval-list" });
  const actions: ApprovalActions = {
    decide: async (id, decision, minutes) => {
      await api.decide(id, decision, minutes);
      await refresh();
    },
  };
  let timer: number | undefined;
  async function refresh() {
    let pending: ApprovalView[];
    try {
      pending = await api.approvals();
    } catch (e) {
      fill(list, notice("error", (e as Error).message));
      return;
    }
    onCount(pending.length);
    if (pending.length === 0) {
      fill(list, h("div", { class: "empty" }, h("p", null, "Nothing waits for you."), h("p", { class: "muted" }, "When a client asks to trade live, delete something or connect for the first time, the request appears here, in a notification and in the tray.")));
    } else {
      fill(list, ...pending.map((a) => approvalCard(a, Date.now(), actions)));
    }
  }
  const tickAll = () => {
    for (const card of list.querySelectorAll<HTMLElement & { tick?: (now: number) => void }>(".approval-card")) card.tick?.(Date.now());
  };
  fill(root, h("h2", null, "Approvals"), h("p", { class: "lead" }, "Requests that need you. Silence is a no: each one is denied when its time runs out."), list);
  return {
    root,
    refresh,
    start() {
      timer ??= window.setInterval(tickAll, 1000);
    },
  };
}
