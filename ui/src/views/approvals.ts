// Approvals: what a client waits for, in plain words, with the exact arguments on demand and a
// countdown to the automatic denial. Every card leans towards no: Deny has the focus, Esc denies,
// and letting the call run takes a deliberate press on a button that names what will happen.
import type { AllowanceView, ApprovalView } from "../bindings";
import { button, fill, h, notice } from "../dom";
import { countdown, secondsLeft } from "../format";
import type { Api, Decision } from "../ipc";
import { RISK_LABEL, approveVerb, headline, isLiveMoney, risk } from "../tools";

export interface ApprovalActions {
  decide(id: string, decision: Decision, minutes?: number): Promise<void>;
  /** The icon the desktop shows for a program, as a `data:` URL, or null. */
  hostIcon?(program: string): Promise<string | null>;
}

/** Where a card asks for the asking program's icon: the app's command, where the API has it. */
export function hostIconsFrom(api: Pick<Api, "hostIcon">): ApprovalActions["hostIcon"] {
  return (program) => (api.hostIcon ? api.hostIcon(program) : Promise.resolve(null));
}

const ALLOW_MINUTES = [5, 15, 60];
/** A card's approving buttons wake after this long: a click meant for something else must not answer. */
export const ARM_DELAY_MS = 800;

type Card = HTMLElement & { tick?: (now: number) => void };

/** Put the focus on a card's safe choice. */
export function focusDeny(card: HTMLElement): void {
  card.querySelector<HTMLButtonElement>("button.deny")?.focus();
}

/** One request: headline, who asks, for which account, the arguments, and the answers. */
/**
 * What the call will touch, as the broker looked it up ("Holdings:", "Will deploy:", …): the
 * first thing under the headline. LIVE MONEY and PAPER stand out; a look-up that failed says so.
 */
function consequences(approval: ApprovalView): HTMLElement | null {
  const preview = approval.preview;
  if (!preview) return null;
  const headingId = `preview-${approval.id}`;
  const line = (text: string) => {
    const mode = text === "LIVE MONEY" || text.startsWith("trading mode not stated") ? "live-money" : text.startsWith("PAPER") ? "paper" : "";
    return h("li", mode ? { class: mode } : null, text);
  };
  return h(
    "section",
    { class: "preview", attrs: { "aria-labelledby": headingId } },
    h("h4", { id: headingId }, preview.heading),
    preview.lines.length > 0 ? h("ul", null, ...preview.lines.map(line)) : null,
    preview.unavailable ? h("p", { class: "preview-unavailable" }, preview.unavailable) : null,
  );
}

/**
 * The asking program's icon, as the desktop shows it, beside its name: filled in once found, and
 * nothing at all where there is none. Decorative: the name says who asks in words.
 */
function hostIcon(approval: ApprovalView, actions: ApprovalActions): HTMLElement | null {
  if (!approval.host_program || !actions.hostIcon) return null;
  const img = h("img", { class: "host-icon", attrs: { alt: "", width: "20", height: "20", hidden: "" } }) as HTMLImageElement;
  void actions.hostIcon(approval.host_program).then((url) => {
    if (url && url.startsWith("data:image/")) {
      img.src = url;
      img.hidden = false;
    }
  }).catch(() => undefined);
  return img;
}

export function approvalCard(approval: ApprovalView, nowMs: number, actions: ApprovalActions, armDelayMs = ARM_DELAY_MS): HTMLElement {
  const pairing = approval.kind === "pairing";
  const level = risk(approval);
  const headId = `approval-head-${approval.id}`;
  const timer = h("span", { class: "countdown", data: { expires: String(approval.expires) } });
  const tick = (now: number) => {
    const left = secondsLeft(approval.expires, now);
    timer.textContent = left > 0 ? `denied automatically in ${countdown(left)}` : "timed out: denied";
    timer.classList.toggle("urgent", left <= 10);
  };
  tick(nowMs);
  const status = h("div", { class: "card-status" });
  let answering = false;
  const answer = (decision: Decision, mins?: number) => {
    if (answering) return;
    answering = true;
    for (const b of card.querySelectorAll("button")) b.disabled = true;
    actions.decide(approval.id, decision, mins).catch((e: Error) => {
      answering = false;
      fill(status, notice("error", e.message));
      for (const b of card.querySelectorAll("button")) b.disabled = b.classList.contains("arming");
    });
  };
  const args = h(
    "details",
    { class: "arguments" },
    h("summary", null, pairing ? "Details" : "Exact arguments (brokerage credentials masked)"),
    h("pre", null, JSON.stringify(approval.arguments, null, 2)),
    h("p", { class: "digest" }, "Digest ", h("code", null, approval.arguments_digest.slice(0, 16)), " — this approval covers these arguments only."),
  );
  // Red goes on the button that lets a risky call run; denying is never the dangerous choice.
  const approve = button(approveVerb(approval), () => answer("approve"), `${level === "live" || level === "delete" ? "danger" : "primary"} approve`);
  const deny = button("Deny", () => answer("deny"), "secondary deny");
  // A standing allowance would let the next live order through unasked: live calls are asked one by one.
  let allowFor: HTMLElement | null = null;
  let allow: HTMLButtonElement | null = null;
  if (!pairing && !isLiveMoney(approval)) {
    const minutes = h(
      "select",
      { class: "allow-minutes", attrs: { "aria-label": "Minutes to allow this tool" } },
      ...ALLOW_MINUTES.map((m) => h("option", { attrs: { value: String(m) } }, `${m} min`)),
    );
    allow = button("Allow this tool for", () => answer("allow_for", Number(minutes.value)), "secondary small allow");
    allowFor = h("span", { class: "allow-for" }, allow, minutes);
  }
  const card: Card = h(
    "article",
    {
      class: `approval-card ${pairing ? "pairing" : "tool-call"} risk-${level}`,
      data: { id: approval.id, risk: level },
      attrs: { "aria-labelledby": headId, tabindex: "-1" },
      on: {
        keydown: (e) => {
          // Esc is the way out of any question, so it answers no. Enter on the card itself does
          // nothing: only a press on a button answers (Enter on the focused Deny denies).
          if (e.key === "Escape") {
            e.preventDefault();
            e.stopPropagation();
            answer("deny");
          } else if (e.key === "Enter" && e.target === card) {
            e.preventDefault();
          }
        },
      },
    },
    h(
      "header",
      null,
      h("span", { class: `badge risk ${level}` }, RISK_LABEL[level]),
      hostIcon(approval, actions),
      h("strong", { class: "who" }, approval.client_name),
      pairing ? " wants to connect" : h("span", null, " wants to run ", h("code", { class: "tool" }, approval.tool ?? "")),
      approval.code ? h("span", { class: "request-code", attrs: { title: "The waiting client shows the same code" } }, `code ${approval.code}`) : null,
      timer,
    ),
    h("h3", { class: "headline", id: headId }, headline(approval)),
    consequences(approval),
    h("p", { class: "summary" }, approval.summary),
    h(
      "dl",
      { class: "facts" },
      h("dt", null, "Account"), h("dd", null, approval.account),
      h("dt", null, "Client"), h("dd", null, `${approval.client_name} (${approval.client_id})`),
      approval.host ? h("dt", null, "Running in") : null, approval.host ? h("dd", { class: "host" }, approval.host) : null,
      approval.scope ? h("dt", null, "Scope") : null, approval.scope ? h("dd", { class: "mono" }, approval.scope) : null,
    ),
    args,
    h("div", { class: "actions" }, deny, approve, allowFor),
    status,
  );
  card.tick = tick;
  if (armDelayMs > 0) {
    // The wait is shown as a bar filling the button, so the button reads as coming, not broken.
    const arming = [approve, allow].filter((b): b is HTMLButtonElement => b !== null);
    for (const b of arming) {
      b.disabled = true;
      b.classList.add("arming");
      b.style.setProperty("--arm-ms", `${armDelayMs}ms`);
    }
    setTimeout(() => {
      for (const b of arming) {
        b.classList.remove("arming");
        if (!answering) b.disabled = false;
      }
    }, armDelayMs);
  }
  return card;
}

/** Tools allowed for a while: each with its client, time left, and Revoke. */
export function allowanceList(allowances: AllowanceView[], revoke: (a: AllowanceView) => void): HTMLElement {
  const minutes = (secs: number) => (secs >= 60 ? `${Math.ceil(secs / 60)} min left` : `${secs} s left`);
  return h(
    "div",
    { class: "panel" },
    h("h3", { id: "allowances-heading" }, "Allowed without asking, for now"),
    h("ul", { class: "allowance-list" }, ...allowances.map((a) => h("li", { data: { session: a.session_id, tool: a.tool } },
      h("code", null, a.tool), ` for ${a.client_name || a.client_id} · ${minutes(a.seconds_left)} `,
      button("Revoke", () => revoke(a), "secondary revoke-allowance")))),
  );
}

/** The approvals view: every pending request, refreshed on each approval event. */
export function approvalsView(api: Api, onCount: (n: number) => void) {
  const root = h("section", { class: "view", id: "view-approvals" });
  const list = h("div", { class: "approval-list" });
  const empty = h("div", { class: "empty" }, h("p", null, "Nothing waits for you."), h("p", { class: "muted" }, "When a client asks to trade live, delete something or connect for the first time, the request appears here, in a notification and in the tray."));
  // Spoken as soon as a request arrives; a visible heading would repeat the card.
  const announcer = h("div", { class: "visually-hidden", id: "approval-announcer", attrs: { "aria-live": "assertive", role: "status" } });
  // Cards live across refreshes: one being read is not rebuilt under the trader, nor re-armed.
  const cards = new Map<string, Card>();
  let unannounced: string[] = [];
  const actions: ApprovalActions = {
    decide: async (id, decision, minutes) => {
      await api.decide(id, decision, minutes);
      await refresh();
    },
    hostIcon: hostIconsFrom(api),
  };
  let timer: number | undefined;

  function announce() {
    if (!root.isConnected || !unannounced.length) return;
    const fresh = unannounced.map((id) => cards.get(id)).filter((c): c is Card => c !== undefined);
    unannounced = [];
    if (!fresh.length) return;
    const first = fresh[0];
    announcer.textContent = fresh.length === 1
      ? `New request: ${first.querySelector(".who")?.textContent ?? ""}, ${first.querySelector(".headline")?.textContent ?? ""}. Deny has the focus.`
      : `${fresh.length} new requests. Deny has the focus on the first.`;
    // The trader may be answering another card: the focus stays there, the announcement says it.
    const active = document.activeElement;
    if (!active || !list.contains(active) || !active.closest(".approval-card")) focusDeny(first);
  }

  // Standing allowances: what runs without asking, for how long, and a way to end it now.
  const standing = h("section", { class: "allowances", attrs: { "aria-labelledby": "allowances-heading" } });
  async function refreshAllowances() {
    const allowances = api.allowances ? await api.allowances().catch(() => [] as AllowanceView[]) : [];
    fill(standing, ...(allowances.length ? [allowanceList(allowances, async (a) => {
      await api.revokeAllowance(a.session_id, a.tool).catch(() => undefined);
      await refreshAllowances();
    })] : []));
  }

  async function refresh() {
    let pending: ApprovalView[];
    try {
      pending = await api.approvals();
    } catch (e) {
      fill(list, notice("error", (e as Error).message));
      cards.clear();
      return;
    }
    onCount(pending.length);
    void refreshAllowances();
    for (const [id, card] of cards) {
      if (pending.some((a) => a.id === id)) continue;
      card.remove();
      cards.delete(id);
    }
    for (const a of pending) {
      if (cards.has(a.id)) continue;
      cards.set(a.id, approvalCard(a, Date.now(), actions));
      unannounced.push(a.id);
    }
    if (pending.length === 0) {
      fill(list, empty);
      return;
    }
    // Moved only where the order changed: a card taken out and put back would lose the focus.
    const kept = new Set<Node>(cards.values());
    for (const child of [...list.children]) if (!kept.has(child)) child.remove();
    let at: ChildNode | null = list.firstChild;
    for (const a of pending) {
      const card = cards.get(a.id)!;
      if (card === at) at = card.nextSibling;
      else list.insertBefore(card, at);
    }
    announce();
  }
  const tickAll = () => {
    for (const card of cards.values()) card.tick?.(Date.now());
  };
  // Esc with the focus outside any card (the page, the heading) denies the request on top.
  root.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || (e.target as Element | null)?.closest?.(".approval-card")) return;
    // The top card still waiting for an answer: one being answered has its buttons off.
    const deny = list.querySelector<HTMLButtonElement>(".approval-card button.deny:not(:disabled)");
    if (!deny) return;
    e.preventDefault();
    deny.click();
  });
  fill(root, h("h2", null, "Approvals"), h("p", { class: "lead" }, "Requests that need you. Silence is a no: each one is denied when its time runs out. Esc denies the request you are on."), announcer, list, standing);
  return {
    root,
    refresh,
    start() {
      timer ??= window.setInterval(tickAll, 1000);
    },
    /** Esc pressed with nothing focused in the window: deny the top request if this view shows. */
    escape(): boolean {
      if (!root.isConnected) return false;
      const deny = list.querySelector<HTMLButtonElement>(".approval-card button.deny:not(:disabled)");
      if (!deny) return false;
      deny.click();
      return true;
    },
  };
}
