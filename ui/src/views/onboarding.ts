// The first-run guide: from no account to Claude Desktop's first approved connection, one step at
// a time. Each step reuses the form or panel of the view that does the same thing later, so a
// trader who skips the guide meets the same controls there.
import type { ApprovalView, PresetInfo } from "../bindings";
import { button, field, fill, h, input, notice } from "../dom";
import type { Api } from "../ipc";
import { accountForm } from "./accounts";
import { ARM_DELAY_MS, type ApprovalActions, approvalCard, hostIconsFrom } from "./approvals";
import { checkedPreset, connectError, connectResult, presetPicker, previewPanel, testConnectionButton } from "./clients";

export type StepName = "account" | "client" | "connect" | "restart" | "waiting" | "done";

const STEPS: { name: StepName; short: string; title: string }[] = [
  { name: "account", short: "Account", title: "Add your QuantConnect account" },
  { name: "client", short: "Permissions", title: "Choose what Claude may do" },
  { name: "connect", short: "Connect", title: "Connect Claude Desktop" },
  { name: "restart", short: "Restart", title: "Restart Claude Desktop" },
  { name: "waiting", short: "First connection", title: "Waiting for Claude's first connection" },
  { name: "done", short: "Done", title: "You're set" },
];

/** Where the guide hands over: a normal view of the window. */
export type LeaveTo = "activity" | "accounts" | "clients";

export interface GuideOptions {
  /** How often the waiting step asks for pending approvals. */
  pollMs?: number;
  /** Passed to the approval cards; tests set 0. */
  armDelayMs?: number;
}

interface Step {
  body: (Node | null)[];
  /** What gets the focus when the step appears; the step's heading when there is no field. */
  focus?: HTMLElement;
}

type Tickable = HTMLElement & { tick?: (now: number) => void };

export function onboardingView(api: Api, leaveTo: (view: LeaveTo) => void, options: GuideOptions = {}) {
  const pollMs = options.pollMs ?? 1000;
  const armDelayMs = options.armDelayMs ?? ARM_DELAY_MS;
  const root = h("section", { class: "view", id: "onboarding" });
  const indicator = h(
    "ol",
    { id: "onboarding-steps", attrs: { "aria-label": "Setup steps" } },
    ...STEPS.map((s) => h("li", { data: { step: s.name } }, s.short)),
  );
  const panel = h("section", { class: "panel", id: "onboarding-step", attrs: { "aria-labelledby": "onboarding-heading" } });

  let step: StepName = "account";
  // Bumped on every step change: an answer that arrives after the trader moved on is dropped.
  let visit = 0;
  let account: string | null = null;
  let clientId: string | null = null;
  let clientName = "Claude Desktop";
  let presetTitle = "";
  let connectSkipped = false;
  let focusTarget: HTMLElement | null = null;
  let timer: number | undefined;
  // The waiting step's pairing cards, kept across polls so a card being read or answered is
  // never rebuilt under the trader's pointer.
  const cards = new Map<string, Tickable>();
  const deciding = new Set<string>();
  // Answered here: a poll that was already under way must not bring the card back.
  const answered = new Set<string>();
  let waitingList: HTMLElement | null = null;
  let waitingNote: HTMLElement | null = null;

  const focusNow = (el: HTMLElement | null | undefined) => {
    if (el && root.isConnected) el.focus();
  };
  // An answer that arrives late moves the focus only if the trader is not using another control.
  const focusIfIdle = (el: HTMLElement | null | undefined) => {
    const active = document.activeElement;
    if (!active || active === document.body || active.id === "onboarding-heading") focusNow(el);
  };

  function leave(to: LeaveTo) {
    stop();
    leaveTo(to);
  }

  function go(next: StepName, lead: HTMLElement | null = null) {
    stop();
    visit += 1;
    step = next;
    const at = STEPS.findIndex((s) => s.name === next);
    [...indicator.children].forEach((li, i) => {
      li.className = i < at ? "done" : i === at ? "current" : "";
      if (i === at) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    });
    panel.dataset.step = next;
    const heading = h("h3", { id: "onboarding-heading", attrs: { tabindex: "-1" } }, STEPS[at].title);
    const rendered = RENDER[next]();
    fill(panel, h("p", { class: "step-count muted" }, `Step ${at + 1} of ${STEPS.length}`), heading, lead, ...rendered.body);
    focusTarget = rendered.focus ?? heading;
    focusNow(focusTarget);
    if (next === "waiting") start();
  }

  const RENDER: Record<StepName, () => Step> = {
    account() {
      const { form, first } = accountForm(api, (saved) => {
        account = saved.id;
        go("client", notice("ok", `Account “${saved.id}” works and is saved. Its token is in the OS keychain and will not be shown again.`));
      }, null);
      return {
        body: [
          h("p", null, "Keybridge checks your QuantConnect user id and API token, then keeps the token in your OS keychain. It is never shown again, here or to Claude: Keybridge signs each request itself."),
          form,
        ],
        focus: first,
      };
    },

    client() {
      const mine = visit;
      const name = input("onboarding-client-name", { value: "Claude Desktop" });
      const pickerBox = h("div", { class: "preset-box" }, notice("info", "Loading the choices…"));
      const status = h("div", { class: "form-status", id: "onboarding-client-status" });
      let picker: HTMLElement | null = null;
      let presets: PresetInfo[] = [];
      const create = button("Create the client", async () => {
        create.disabled = true;
        fill(status);
        try {
          const preset = picker ? checkedPreset(picker, "onboarding-preset") : "";
          const added = await api.addClient({ name: name.value, account: account ?? "", preset: preset || null, scopes: [], with_key: false });
          clientId = added.client_id;
          clientName = name.value || clientId;
          presetTitle = presets.find((p) => p.name === preset)?.title ?? preset;
          if (mine === visit) go("connect");
        } catch (e) {
          fill(status, notice("error", (e as Error).message));
          create.disabled = false;
        }
      }, "primary", "onboarding-client-create");
      create.disabled = true;
      api.presets().then((loaded) => {
        if (mine !== visit) return;
        presets = loaded;
        picker = presetPicker(presets, "onboarding-preset", "research");
        fill(pickerBox, picker);
        create.disabled = false;
        focusIfIdle(picker.querySelector<HTMLElement>("input:checked") ?? name);
      }).catch((e: Error) => fill(pickerBox, notice("error", e.message)));
      return {
        body: [
          h("p", null, "Claude gets only what you pick here; you can change it later in Clients. Whatever you pick, trading live and deleting wait for your approval first, unless you change that in Settings."),
          pickerBox,
          h("div", { class: "grid" }, field("Name", name, "how requests and Activity show this client")),
          h("div", { class: "actions" }, create),
          status,
        ],
      };
    },

    connect() {
      const mine = visit;
      const id = clientId ?? "";
      const box = h("div", { class: "connect-box" });
      const skip = () => {
        connectSkipped = true;
        go("done");
      };
      // After a failure or a cancel: try again, or finish without connecting.
      const choices = (why: HTMLElement) => {
        const retry = button("Try again", () => void preview(), "primary", "onboarding-connect-retry");
        fill(box, why, h("div", { class: "actions" }, retry, button("Skip: I'll connect it later", skip, "secondary", "onboarding-connect-skip")));
        focusIfIdle(retry);
      };
      async function preview() {
        fill(box, notice("info", "Reading Claude Desktop's configuration…"));
        try {
          const p = await api.connectPreview(id);
          if (mine !== visit) return;
          fill(box, previewPanel(p, async () => {
            const apply = box.querySelector<HTMLButtonElement>("#connect-apply");
            if (apply) apply.disabled = true;
            try {
              const done = await api.connectApply(id, p.file_digest);
              if (mine === visit) go("restart", connectResult(done));
            } catch (e) {
              if (mine === visit) choices(connectError((e as Error).message));
            }
          }, () => choices(notice("info", "Nothing was written."))));
          focusIfIdle(box.querySelector<HTMLElement>("#connect-apply"));
        } catch (e) {
          if (mine === visit) choices(connectError((e as Error).message));
        }
      }
      void preview();
      return {
        body: [
          h("p", null, "Keybridge adds itself to Claude Desktop's configuration as an MCP server. You see the change before anything is written; the servers already there stay as they are, and no secret goes into the file."),
          box,
        ],
      };
    },

    restart() {
      const restarted = button("I've restarted Claude", () => go("waiting"), "primary", "onboarding-restarted");
      return {
        body: [
          h("p", null, "Claude Desktop reads its configuration only when it starts. Quit it completely, from its menu or its tray icon (closing the window is not enough: it keeps running in the background), then open it again."),
          h("p", { class: "muted" }, "On macOS: Claude → Quit Claude (⌘Q). On Windows and Linux: File → Exit, or Quit from its tray icon."),
          h("div", { class: "actions" }, restarted),
        ],
        focus: restarted,
      };
    },

    waiting() {
      cards.clear();
      deciding.clear();
      waitingNote = h("p", { class: "empty waiting-note" }, `Nothing yet. Waiting for ${clientName} to connect…`);
      waitingList = h("div", { class: "approval-list", id: "onboarding-approvals", attrs: { "aria-live": "polite" } }, waitingNote);
      const testBox = h("div", { class: "test-box", id: "onboarding-test-result" });
      void checkPaired(false);
      return {
        body: [
          h("p", null, `The first time ${clientName} connects, Keybridge asks you to allow it, so that no other program can pose as Claude. The request will appear right here, and in a notification.`),
          waitingList,
          h("h4", null, "Check without Claude"),
          h("p", { class: "muted" }, "Test connection starts keybridge-mcp exactly as Claude will, and lists the tools Claude will see."),
          h("div", { class: "actions" }, clientId ? testConnectionButton(api, clientId, testBox, "onboarding-test") : null),
          testBox,
        ],
      };
    },

    done() {
      const finish = button("Open Keybridge", () => leave("activity"), "primary", "onboarding-finish");
      const what = connectSkipped
        ? [
            h("p", null, `${clientName} is ready but not connected yet. When you want, connect it from Clients → “Connect Claude Desktop…” (or “Other clients…” for Claude Code, Cursor or VS Code).`),
            h("p", null, "Its first connection will ask for your approval, in this window and in a notification."),
          ]
        : [
            h("p", null, `${clientName} can now use your QuantConnect account “${account ?? ""}”, within what ${presetTitle ? `the “${presetTitle}” preset` : "its preset"} allows.`),
            h("p", null, "Anything risky, such as trading live or deleting, waits for your approval here and in a notification. Silence is a no: an unanswered request is denied."),
          ];
      return {
        body: [
          h("div", { id: "onboarding-done" }, ...what,
            h("p", { class: "muted" }, "Every call is recorded in Activity. “Pause all access”, at the top right, stops every client at once."),
            h("div", { class: "actions" }, finish)),
        ],
        focus: finish,
      };
    },
  };

  // ---- the waiting step -------------------------------------------------------------------

  const actions: ApprovalActions = {
    hostIcon: hostIconsFrom(api),
    decide: async (id, decision, minutes) => {
      deciding.add(id);
      try {
        await api.decide(id, decision, minutes);
      } finally {
        deciding.delete(id);
      }
      answered.add(id);
      cards.get(id)?.remove();
      cards.delete(id);
      if (step !== "waiting") return;
      if (decision === "approve") go("done");
      else showWaitingNote(`You denied it. If that was ${clientName}, quit and reopen it to ask again.`);
    },
  };

  function showWaitingNote(text?: string) {
    if (!waitingNote || !waitingList) return;
    if (text) waitingNote.textContent = text;
    if (cards.size) waitingNote.remove();
    else if (!waitingNote.isConnected) waitingList.appendChild(waitingNote);
  }

  /** Pending pairing requests of this client: new ones get a card, answered ones lose theirs. */
  async function poll() {
    if (step !== "waiting" || !clientId) return;
    const mine = visit;
    let pending: ApprovalView[];
    try {
      pending = await api.approvals();
    } catch {
      return; // The next poll tries again; the broker's own errors show in the header.
    }
    if (mine !== visit || !waitingList) return;
    const ours = pending.filter((a) => a.kind === "pairing" && a.client_id === clientId && !answered.has(a.id));
    let gone = false;
    for (const [id, card] of cards) {
      if (ours.some((a) => a.id === id) || deciding.has(id)) continue;
      card.remove();
      cards.delete(id);
      gone = true;
    }
    for (const a of ours) {
      if (cards.has(a.id)) continue;
      const card: Tickable = approvalCard(a, Date.now(), actions, armDelayMs);
      cards.set(a.id, card);
      waitingList.appendChild(card);
      // As in the Approvals view, a request arrives with its safe answer under the focus.
      focusIfIdle(card.querySelector<HTMLElement>("button.deny"));
    }
    for (const card of cards.values()) card.tick?.(Date.now());
    showWaitingNote();
    if (gone) await checkPaired(true);
  }

  /** Claude may have been allowed elsewhere (the Approvals view, the tray): then the guide is done. */
  async function checkPaired(requestGone: boolean) {
    if (step !== "waiting" || !clientId) return;
    const mine = visit;
    const clients = await api.clients().catch(() => []);
    if (mine !== visit) return;
    const client = clients.find((c) => c.client_id === clientId);
    if (client && client.approved_hosts.length) go("done");
    else if (requestGone) showWaitingNote(`The request was denied or timed out. Quit and reopen ${clientName} to ask again.`);
  }

  function start() {
    if (step !== "waiting" || timer !== undefined) return;
    timer = window.setInterval(() => void poll(), pollMs);
    void poll();
  }

  function stop() {
    if (timer !== undefined) window.clearInterval(timer);
    timer = undefined;
  }

  fill(
    root,
    h("div", { class: "guide-head" },
      h("div", null,
        h("h2", null, "Set up Keybridge"),
        h("p", { class: "lead" }, "A few short steps, from your QuantConnect account to Claude Desktop's first connection.")),
      button("Skip the guide", () => leave(account ? "clients" : "accounts"), "link", "onboarding-skip")),
    indicator,
    panel,
  );
  go("account");

  return {
    root,
    /** Shown again: the waiting step resumes asking, and the step's field gets the focus back. */
    async refresh() {
      start();
      if (!root.contains(document.activeElement)) focusNow(focusTarget);
    },
    stop,
    get step(): StepName {
      return step;
    },
    /** A new approval: true when it is this guide's pairing request, which the guide shows itself. */
    approvalOpened(approval: ApprovalView): boolean {
      if (approval.kind !== "pairing" || !clientId || approval.client_id !== clientId) return false;
      // Claude was quicker than the trader's click on "I've restarted".
      if (step === "connect" || step === "restart") go("waiting");
      else if (step === "waiting") void poll();
      else return false;
      return true;
    },
    approvalClosed(id: string) {
      if (cards.has(id) && !deciding.has(id)) void poll();
    },
    clientChanged(id: string) {
      if (id === clientId) void checkPaired(false);
    },
  };
}
