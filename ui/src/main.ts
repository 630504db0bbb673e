// The window: a header with the state and the pause switch, a navigation, and five views; on a
// first start, a guide in their place until the trader finishes or skips it.
import "./style.css";
import type { AppInfo, BrokerEvent, StatusView } from "./bindings";
import { button, fill, h, notice } from "./dom";
import { type Api, api, onBrokerEvent, onShowView } from "./ipc";
import { accountsView } from "./views/accounts";
import { activityView } from "./views/activity";
import { approvalsView } from "./views/approvals";
import { clientsView } from "./views/clients";
import { onboardingView } from "./views/onboarding";
import { settingsView } from "./views/settings";

type ViewName = "onboarding" | "approvals" | "activity" | "clients" | "accounts" | "settings";
const ORDER: [ViewName, string][] = [
  ["onboarding", "Setup guide"],
  ["approvals", "Approvals"],
  ["activity", "Activity"],
  ["clients", "Clients"],
  ["accounts", "Accounts"],
  ["settings", "Settings"],
];

export function mount(root: HTMLElement, ipc: Api) {
  let info: AppInfo | null = null;
  let current: ViewName = "approvals";
  const badge = h("span", { class: "count", id: "approval-count" });
  const pill = h("span", { class: "state-pill", id: "status-pill" });
  const pauseButton = button("Pause all access", () => void togglePause(), "pause", "pause-toggle");
  const banner = h("div", { class: "banner" });
  // Paused must be impossible to miss: a band across the window, not just a quieter pill.
  const pausedBand = h(
    "div",
    { class: "paused-band", id: "paused-banner", attrs: { role: "status", hidden: "" } },
    h("strong", null, "All access is paused."),
    " Every client's call is refused until you resume.",
  );
  const approvals = approvalsView(ipc, (n) => {
    badge.textContent = n ? String(n) : "";
    document.title = n ? `Keybridge (${n} waiting)` : "Keybridge";
  });
  const activity = activityView(ipc);
  const clients = clientsView(ipc);
  const accounts = accountsView(ipc, () => void clients.refresh());
  const settings = settingsView(ipc, () => info);
  // Once finished or skipped the guide is gone for this run; the views hold everything it did.
  const onboarding = onboardingView(ipc, (to) => {
    navGuide.hidden = true;
    void show(to);
  });
  const views = { onboarding, approvals, activity, clients, accounts, settings };
  const main = h("main");
  const nav = h(
    "nav",
    { attrs: { "aria-label": "Views" } },
    ...ORDER.map(([name, label]) =>
      h("button", { id: `nav-${name}`, data: { view: name }, attrs: { type: "button" }, on: { click: () => void show(name) } }, label, name === "approvals" ? badge : null),
    ),
  );
  // The guide's entry shows only while the guide is open, to come back to it from another view.
  const navGuide = nav.querySelector<HTMLButtonElement>("#nav-onboarding")!;
  navGuide.hidden = true;

  async function show(name: ViewName) {
    if (current === "onboarding" && name !== "onboarding") onboarding.stop();
    current = name;
    for (const b of nav.querySelectorAll("button")) {
      b.classList.toggle("active", b.dataset.view === name);
      if (b.dataset.view === name) b.setAttribute("aria-current", "page");
      else b.removeAttribute("aria-current");
    }
    // Put back only when it changes: taking the view out and in again would drop the focus, and a
    // new request must not pull the trader off the card they are answering.
    if (main.firstChild !== views[name].root) fill(main, views[name].root);
    await views[name].refresh();
  }

  function showStatus(status: StatusView) {
    pill.textContent = status.paused ? "All access paused" : "Active";
    pill.className = `state-pill ${status.paused ? "paused" : "active"}`;
    pauseButton.textContent = status.paused ? "Resume access" : "Pause all access";
    pauseButton.classList.toggle("resume", status.paused);
    pausedBand.hidden = !status.paused;
    root.classList.toggle("is-paused", status.paused);
  }

  async function refreshStatus() {
    try {
      showStatus(await ipc.status());
    } catch {
      pill.textContent = "Not running";
      pill.className = "state-pill off";
    }
  }

  async function togglePause() {
    try {
      const status = await ipc.status();
      await (status.paused ? ipc.resume() : ipc.pause());
      await refreshStatus();
    } catch (e) {
      fill(banner, notice("error", (e as Error).message));
    }
  }

  function onEvent(event: BrokerEvent) {
    switch (event.type) {
      case "audit":
        activity.add(event.record);
        break;
      case "approval_opened":
        // The guide shows its own client's first connection inline; anything else needs the
        // Approvals view, even mid-guide.
        if (current === "onboarding" && onboarding.approvalOpened(event.approval)) void approvals.refresh();
        else void show("approvals");
        break;
      case "approval_closed":
        if (current === "onboarding") onboarding.approvalClosed(event.id);
        void approvals.refresh();
        break;
      case "paused":
        void refreshStatus();
        break;
      case "client_changed":
        if (current === "clients") void clients.refresh();
        if (current === "onboarding") onboarding.clientChanged(event.client);
        break;
      case "lagged":
        void views[current].refresh();
        break;
      default:
        break;
    }
  }

  fill(
    root,
    h("header", { class: "top" }, h("div", { class: "brand" }, h("span", { class: "logo" }), h("h1", null, "Keybridge")), banner, h("div", { class: "state" }, pill, pauseButton)),
    pausedBand,
    h("div", { class: "body" }, nav, main),
  );

  // Esc with nothing focused (after a click on empty space, say) still answers the request on top.
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || e.defaultPrevented || current !== "approvals") return;
    const target = e.target as Node | null;
    if (target && target !== document.body && target !== document.documentElement && target !== document) return;
    if (approvals.escape()) e.preventDefault();
  });

  void (async () => {
    info = await ipc.appInfo();
    if (info.problem) {
      fill(banner, notice("error", info.problem));
    } else if (info.demo) {
      fill(banner, h("p", { class: "demo-note" }, h("span", { class: "badge demo" }, "Demo"), " QuantConnect is simulated here; nothing reaches a real account."));
    }
    await refreshStatus();
    approvals.start();
    await onBrokerEvent(onEvent);
    await onShowView((view) => void show(view as ViewName));
    const [pending, known] = await Promise.all([ipc.approvals().catch(() => []), ipc.accounts().catch(() => [])]);
    // A waiting request always comes first; a first start opens on the guide.
    if (!pending.length && !info.problem && !known.length) {
      navGuide.hidden = false;
      await show("onboarding");
    } else {
      await show(pending.length ? "approvals" : info.problem ? "settings" : "activity");
    }
  })();
}

const app = document.getElementById("app");
if (app) mount(app, api);
