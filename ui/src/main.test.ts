import { describe, expect, it, vi } from "vitest";
import type { AppInfo, ApprovalView, BrokerEvent } from "./bindings";

let emit: (event: BrokerEvent) => void = () => undefined;
vi.mock("./ipc", () => ({
  api: {},
  onBrokerEvent: vi.fn(async (handler: (event: BrokerEvent) => void) => {
    emit = handler;
    return () => undefined;
  }),
  onShowView: vi.fn(async () => () => undefined),
}));

const { mount } = await import("./main");

const info: AppInfo = { version: "0.3.1", demo: false, problem: null, data_dir: "/d", socket: "/s", quantconnect: "https://qc", bridge: "/b" };

function approval(over: Partial<ApprovalView> = {}): ApprovalView {
  return {
    id: "a-1", kind: "tool_call", client_id: "c1", client_name: "Claude Desktop", session_id: "s-1", account: "main", tool: "delete_project",
    scope: "qc:projects:write", summary: "Claude Desktop wants to delete project 1.", arguments: {}, arguments_digest: "00", created: 0,
    expires: Date.now() / 1000 + 60, ...over,
  };
}

function fakeApi(accounts: unknown[], pending: ApprovalView[] = [], problem: string | null = null) {
  return {
    appInfo: vi.fn().mockResolvedValue({ ...info, problem }),
    status: vi.fn().mockResolvedValue({ paused: false }),
    approvals: vi.fn().mockResolvedValue(pending),
    accounts: vi.fn().mockResolvedValue(accounts),
    clients: vi.fn().mockResolvedValue([]),
    presets: vi.fn().mockResolvedValue([]),
    auditTail: vi.fn().mockResolvedValue([]),
    auditVerify: vi.fn().mockResolvedValue({ intact: true, records: 0, files: 1 }),
    settings: vi.fn().mockResolvedValue({ token_ttl_secs: 900, approval_timeout_secs: 120, policy: {} }),
    scopes: vi.fn().mockResolvedValue([]),
    autostart: vi.fn().mockResolvedValue(false),
  };
}

function open(api: ReturnType<typeof fakeApi>) {
  const root = document.createElement("div");
  document.body.replaceChildren(root);
  mount(root, api as never);
  return root;
}

const shown = (root: HTMLElement) => root.querySelector("main > section")?.id;

describe("window", () => {
  it("opens the guide on a first start, with the navigation still there", async () => {
    const root = open(fakeApi([]));
    await vi.waitFor(() => expect(shown(root)).toBe("onboarding"));
    expect(root.querySelector<HTMLElement>("#nav-onboarding")?.hidden).toBe(false);
    expect(root.querySelector("#nav-onboarding")?.classList.contains("active")).toBe(true);
    expect(root.querySelector("#nav-activity")).not.toBeNull();
    expect(document.activeElement?.id).toBe("account-name");
  });

  it("opens Activity once an account exists, without the guide", async () => {
    const root = open(fakeApi([{ id: "main" }]));
    await vi.waitFor(() => expect(shown(root)).toBe("view-activity"));
    expect(root.querySelector<HTMLElement>("#nav-onboarding")?.hidden).toBe(true);
  });

  it("opens on a waiting request, or on Settings when the broker is not here", async () => {
    const waiting = open(fakeApi([], [approval()]));
    await vi.waitFor(() => expect(shown(waiting)).toBe("view-approvals"));
    const broken = open(fakeApi([], [], "another Keybridge is already running"));
    await vi.waitFor(() => expect(shown(broken)).toBe("view-settings"));
  });

  it("leaves the guide for a tool call or another client's pairing, and comes back from the nav", async () => {
    const api = fakeApi([]);
    const root = open(api);
    await vi.waitFor(() => expect(shown(root)).toBe("onboarding"));
    emit({ type: "approval_opened", approval: approval({ kind: "pairing", client_id: "someone-else", tool: null }) });
    await vi.waitFor(() => expect(shown(root)).toBe("view-approvals"));
    root.querySelector<HTMLButtonElement>("#nav-onboarding")!.click();
    await vi.waitFor(() => expect(shown(root)).toBe("onboarding"));
    emit({ type: "approval_opened", approval: approval() });
    await vi.waitFor(() => expect(shown(root)).toBe("view-approvals"));
  });

  it("keeps the guide's own pairing request in the guide", async () => {
    const api = {
      ...fakeApi([]),
      addAccount: vi.fn().mockResolvedValue({ id: "main", user_id: "1", organization_id: null, created: 0 }),
      presets: vi.fn().mockResolvedValue([{ name: "research", title: "Research", description: "Backtests, no live trading.", scopes: [] }]),
      addClient: vi.fn().mockResolvedValue({ client_id: "c1", client_key: null }),
      connectPreview: vi.fn().mockRejectedValue(new Error("not valid JSON")),
    };
    const root = open(api);
    await vi.waitFor(() => expect(shown(root)).toBe("onboarding"));
    root.querySelector<HTMLButtonElement>("#account-add")!.click();
    await vi.waitFor(() => expect(root.querySelector<HTMLButtonElement>("#onboarding-client-create")?.disabled).toBe(false));
    root.querySelector<HTMLButtonElement>("#onboarding-client-create")!.click();
    await vi.waitFor(() => expect(root.querySelector("#connect-error")).not.toBeNull());
    api.approvals.mockResolvedValue([approval({ kind: "pairing", tool: null })]);
    emit({ type: "approval_opened", approval: approval({ kind: "pairing", tool: null }) });
    await vi.waitFor(() => expect(root.querySelector("#onboarding .approval-card.pairing")).not.toBeNull());
    expect(shown(root)).toBe("onboarding");
    expect(root.querySelector("#onboarding-step")?.getAttribute("data-step")).toBe("waiting");
    await vi.waitFor(() => expect(root.querySelector("#approval-count")?.textContent).toBe("1"));
    root.querySelector<HTMLButtonElement>("#nav-activity")!.click();
  });

  it("hands over to the normal views when the guide is skipped", async () => {
    const root = open(fakeApi([]));
    await vi.waitFor(() => expect(shown(root)).toBe("onboarding"));
    root.querySelector<HTMLButtonElement>("#onboarding-skip")!.click();
    await vi.waitFor(() => expect(shown(root)).toBe("view-accounts"));
    expect(root.querySelector<HTMLElement>("#nav-onboarding")?.hidden).toBe(true);
    expect(root.querySelector("#account-form")).not.toBeNull();
  });
});

describe("window: keyboard, screen reader and state", () => {
  it("marks the current view in the navigation for screen readers", async () => {
    const root = open(fakeApi([{ id: "main" }]));
    await vi.waitFor(() => expect(shown(root)).toBe("view-activity"));
    expect(root.querySelector("nav")?.getAttribute("aria-label")).toBe("Views");
    expect(root.querySelector("#nav-activity")?.getAttribute("aria-current")).toBe("page");
    expect(root.querySelectorAll('nav [aria-current="page"]')).toHaveLength(1);
    root.querySelector<HTMLButtonElement>("#nav-settings")!.click();
    await vi.waitFor(() => expect(shown(root)).toBe("view-settings"));
    expect(root.querySelector("#nav-settings")?.getAttribute("aria-current")).toBe("page");
    expect(root.querySelector("#nav-activity")?.hasAttribute("aria-current")).toBe(false);
  });

  it("shows a paused state as a band across the window, gone once resumed", async () => {
    const api = fakeApi([{ id: "main" }]);
    api.status.mockResolvedValue({ paused: true });
    const root = open(api);
    await vi.waitFor(() => expect(root.querySelector<HTMLElement>("#paused-banner")?.hidden).toBe(false));
    expect(root.querySelector("#paused-banner")?.getAttribute("role")).toBe("status");
    expect(root.querySelector("#paused-banner")?.textContent).toContain("All access is paused");
    expect(root.classList.contains("is-paused")).toBe(true);
    expect(root.querySelector("#status-pill")?.className).toContain("paused");
    api.status.mockResolvedValue({ paused: false });
    emit({ type: "paused", paused: false });
    await vi.waitFor(() => expect(root.querySelector<HTMLElement>("#paused-banner")?.hidden).toBe(true));
    expect(root.classList.contains("is-paused")).toBe(false);
  });

  it("opens on a request with Deny focused, and Esc with nothing focused denies the request on top", async () => {
    const api = { ...fakeApi([], [approval(), approval({ id: "a-2" })]), decide: vi.fn().mockResolvedValue(undefined) };
    const root = open(api);
    await vi.waitFor(() => expect(document.activeElement?.classList.contains("deny")).toBe(true));
    expect(document.activeElement?.closest<HTMLElement>(".approval-card")?.dataset.id).toBe("a-1");
    (document.activeElement as HTMLElement).blur();
    document.body.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true, cancelable: true }));
    expect(api.decide).toHaveBeenCalledExactlyOnceWith("a-1", "deny", undefined);
    // On any other view Esc is not an answer.
    root.querySelector<HTMLButtonElement>("#nav-settings")!.click();
    await vi.waitFor(() => expect(shown(root)).toBe("view-settings"));
    document.body.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true, cancelable: true }));
    expect(api.decide).toHaveBeenCalledOnce();
  });

  it("leaves the focus on the card being answered when another request arrives", async () => {
    const api = fakeApi([], [approval()]);
    const root = open(api);
    await vi.waitFor(() => expect(document.activeElement?.classList.contains("deny")).toBe(true));
    const reading = root.querySelector<HTMLElement>('.approval-card[data-id="a-1"] details summary')!;
    reading.tabIndex = 0;
    reading.focus();
    api.approvals.mockResolvedValue([approval(), approval({ id: "a-2" })]);
    emit({ type: "approval_opened", approval: approval({ id: "a-2" }) });
    await vi.waitFor(() => expect(root.querySelectorAll(".approval-card")).toHaveLength(2));
    expect(document.activeElement).toBe(reading);
    expect(root.querySelector("#approval-announcer")?.textContent).toContain("New request");
  });
});
