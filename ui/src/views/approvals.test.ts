import { afterEach, describe, expect, it, vi } from "vitest";
import type { ApprovalView } from "../bindings";
import { approvalCard, approvalsView } from "./approvals";

const now = Date.UTC(2026, 10, 23, 12, 0, 0);

function approval(over: Partial<ApprovalView> = {}): ApprovalView {
  return {
    id: "a-1",
    kind: "tool_call",
    client_id: "claude-desktop-1a2b",
    client_name: "Claude Desktop",
    session_id: "s-1",
    account: "main",
    tool: "stop_live_algorithm",
    scope: "qc:live:execute",
    summary: "Claude Desktop wants to stop the live algorithm of project “Momentum” (123).",
    arguments: { projectId: 123 },
    arguments_digest: "0123456789abcdef0123456789abcdef",
    created: now / 1000 - 18,
    expires: now / 1000 + 42,
    ...over,
  };
}

describe("approval card", () => {
  it("says what will happen, who asks, for which account, and when it is denied", () => {
    const card = approvalCard(approval(), now, { decide: vi.fn() }, 0);
    expect(card.querySelector(".summary")?.textContent).toContain("Momentum");
    expect(card.querySelector(".who")?.textContent).toBe("Claude Desktop");
    expect(card.querySelector(".tool")?.textContent).toBe("stop_live_algorithm");
    expect(card.textContent).toContain("main");
    expect(card.querySelector(".countdown")?.textContent).toBe("denied automatically in 0:42");
    expect(card.querySelector(".countdown")?.classList.contains("urgent")).toBe(false);
  });

  it("shows what the call will touch under its heading, LIVE MONEY set apart", () => {
    const liquidation = approvalCard(
      approval({
        tool: "liquidate_live_algorithm",
        preview: { heading: "Holdings:", lines: ["SPY: 120 shares at $452.10, market value $54,252.00", "1 open order"] },
      }),
      now,
      { decide: vi.fn() },
      0,
    );
    const preview = liquidation.querySelector("section.preview")!;
    expect(preview.querySelector("h4")?.textContent).toBe("Holdings:");
    expect([...preview.querySelectorAll("li")].map((li) => li.textContent)).toEqual([
      "SPY: 120 shares at $452.10, market value $54,252.00",
      "1 open order",
    ]);
    expect(preview.getAttribute("aria-labelledby")).toBe(preview.querySelector("h4")?.id);
    const deploy = approvalCard(
      approval({ tool: "create_live_algorithm", scope: "qc:live:write", preview: { heading: "Will deploy:", lines: ["LIVE MONEY", "Node: \"LN-1\""] } }),
      now,
      { decide: vi.fn() },
      0,
    );
    expect(deploy.querySelector(".preview li.live-money")?.textContent).toBe("LIVE MONEY");
    const missing = approvalCard(
      approval({ preview: { heading: "Holdings:", lines: [], unavailable: "Not everything could be looked up: timeout." } }),
      now,
      { decide: vi.fn() },
      0,
    );
    expect(missing.querySelector(".preview-unavailable")?.textContent).toContain("Not everything could be looked up");
    expect(approvalCard(approval(), now, { decide: vi.fn() }, 0).querySelector(".preview")).toBeNull();
  });

  it("counts down and turns urgent in the last ten seconds, then says it was denied", () => {
    const card = approvalCard(approval(), now, { decide: vi.fn() }, 0) as HTMLElement & { tick(n: number): void };
    card.tick(now + 35_000);
    expect(card.querySelector(".countdown")?.textContent).toBe("denied automatically in 0:07");
    expect(card.querySelector(".countdown")?.classList.contains("urgent")).toBe(true);
    card.tick(now + 60_000);
    expect(card.querySelector(".countdown")?.textContent).toBe("timed out: denied");
  });

  it("shows the exact arguments on demand, as text", () => {
    const card = approvalCard(approval({ arguments: { name: "<img src=x onerror=alert(1)>" } }), now, { decide: vi.fn() }, 0);
    const details = card.querySelector("details.arguments") as HTMLDetailsElement;
    expect(details.open).toBe(false);
    expect(details.querySelector("pre")?.textContent).toContain("<img src=x onerror=alert(1)>");
    expect(details.querySelector("img")).toBeNull();
  });

  it("approves, denies, or allows the tool for the chosen minutes", async () => {
    const decide = vi.fn().mockResolvedValue(undefined);
    const card = approvalCard(approval(), now, { decide }, 0);
    (card.querySelector("button.approve") as HTMLButtonElement).click();
    expect(decide).toHaveBeenLastCalledWith("a-1", "approve", undefined);
    expect((card.querySelector("button.deny") as HTMLButtonElement).disabled).toBe(true);

    // Live calls offer no standing allowance (tested below): the allowance is asked on a delete.
    const other = approvalCard(approval({ id: "a-2", tool: "delete_backtest", scope: "qc:backtests:delete" }), now, { decide }, 0);
    (other.querySelector("select.allow-minutes") as HTMLSelectElement).value = "15";
    (other.querySelector("button.allow") as HTMLButtonElement).click();
    expect(decide).toHaveBeenLastCalledWith("a-2", "allow_for", 15);

    const third = approvalCard(approval({ id: "a-3" }), now, { decide }, 0);
    (third.querySelector("button.deny") as HTMLButtonElement).click();
    expect(decide).toHaveBeenLastCalledWith("a-3", "deny", undefined);
  });

  it("wakes its buttons only after a moment, so a stray click answers nothing", () => {
    vi.useFakeTimers();
    const decide = vi.fn();
    const card = approvalCard(approval(), now, { decide });
    const approve = card.querySelector("button.approve") as HTMLButtonElement;
    expect(approve.disabled).toBe(true);
    approve.click();
    expect(decide).not.toHaveBeenCalled();
    vi.advanceTimersByTime(800);
    expect(approve.disabled).toBe(false);
    vi.useRealTimers();
  });

  it("shows a failed answer in plain words and lets the user try again", async () => {
    const decide = vi.fn().mockRejectedValue(new Error("no pending approval `a-1` (answered or timed out already)"));
    const card = approvalCard(approval(), now, { decide }, 0);
    (card.querySelector("button.approve") as HTMLButtonElement).click();
    await vi.waitFor(() => expect(card.querySelector(".notice.error")?.textContent).toContain("timed out already"));
    expect((card.querySelector("button.approve") as HTMLButtonElement).disabled).toBe(false);
  });

  it("asks a first connection without offering a time-boxed allowance", () => {
    const card = approvalCard(approval({ kind: "pairing", tool: null, scope: null, arguments: { host: "/usr/bin/claude-desktop" } }), now, { decide: vi.fn() }, 0);
    expect(card.classList.contains("pairing")).toBe(true);
    expect(card.querySelector("button.approve")?.textContent).toBe("Allow connection");
    expect(card.querySelector("button.allow")).toBeNull();
    expect(card.textContent).toContain("wants to connect");
  });
});

function key(target: Element, k: string) {
  const event = new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true });
  target.dispatchEvent(event);
  return event;
}

afterEach(() => {
  vi.useRealTimers();
  document.body.replaceChildren();
});

describe("approval card: safe defaults", () => {
  it("leads with a headline in plain words and names the action on the approve button", () => {
    const stop = approvalCard(approval(), now, { decide: vi.fn() }, 0);
    expect(stop.querySelector("h3.headline")?.textContent).toBe("Stop the live algorithm of project 123; open positions stay open");
    expect(stop.getAttribute("aria-labelledby")).toBe(stop.querySelector("h3.headline")?.id);
    expect(stop.querySelector("button.approve")?.textContent).toBe("Stop live algorithm");
    expect(stop.querySelector(".badge.risk")?.textContent).toBe("Live trading");

    const deploy = approvalCard(approval({ tool: "create_live_algorithm", scope: "qc:live:write", arguments: { projectId: 9, brokerage: { id: "InteractiveBrokersBrokerage" } } }), now, { decide: vi.fn() }, 0);
    expect(deploy.querySelector("button.approve")?.textContent).toBe("Deploy live");
    expect(deploy.querySelector(".headline")?.textContent).toBe("Deploy project 9 to live trading with “InteractiveBrokersBrokerage”");

    const remove = approvalCard(approval({ tool: "delete_project", scope: "qc:projects:delete", arguments: { projectId: 7 } }), now, { decide: vi.fn() }, 0);
    expect(remove.querySelector("button.approve")?.textContent).toBe("Delete project");
    expect(remove.querySelector(".badge.risk")?.textContent).toContain("can't be undone");

    const other = approvalCard(approval({ tool: "update_file_contents", scope: "qc:files:write" }), now, { decide: vi.fn() }, 0);
    expect(other.querySelector("button.approve")?.textContent).toBe("Allow");
  });

  it("colours the risky action, not Deny", () => {
    const live = approvalCard(approval(), now, { decide: vi.fn() }, 0);
    expect(live.querySelector("button.approve")?.classList.contains("danger")).toBe(true);
    expect(live.querySelector("button.deny")?.classList.contains("danger")).toBe(false);
    expect(live.querySelector("button.deny")?.classList.contains("secondary")).toBe(true);
    const pairing = approvalCard(approval({ kind: "pairing", tool: null, scope: null }), now, { decide: vi.fn() }, 0);
    expect(pairing.querySelector("button.approve")?.classList.contains("danger")).toBe(false);
  });

  it("offers no standing allowance for live trading tools", () => {
    for (const [tool, scope] of [
      ["create_live_algorithm", "qc:live:write"],
      ["liquidate_live_algorithm", "qc:live:execute"],
      ["stop_live_algorithm", "qc:live:execute"],
      ["create_live_command", "qc:live:execute"],
      // Named as live even if the scope were unknown to this window.
      ["broadcast_live_command", null],
    ] as const) {
      const card = approvalCard(approval({ tool, scope }), now, { decide: vi.fn() }, 0);
      expect(card.querySelector("button.allow"), tool).toBeNull();
      expect(card.querySelector("select.allow-minutes"), tool).toBeNull();
    }
    const files = approvalCard(approval({ tool: "delete_file", scope: "qc:files:delete" }), now, { decide: vi.fn() }, 0);
    expect(files.querySelector("button.allow")).not.toBeNull();
  });

  it("denies on Esc, and Enter on the card approves nothing", () => {
    const decide = vi.fn().mockResolvedValue(undefined);
    const card = approvalCard(approval(), now, { decide }, 0);
    document.body.appendChild(card);
    card.focus();
    const enter = key(card, "Enter");
    expect(enter.defaultPrevented).toBe(true);
    expect(decide).not.toHaveBeenCalled();
    key(card.querySelector("details summary")!, "Escape");
    expect(decide).toHaveBeenCalledExactlyOnceWith("a-1", "deny", undefined);
    key(card, "Escape");
    expect(decide).toHaveBeenCalledOnce();
  });

  it("shows the arming delay as progress on the buttons that approve; Deny works at once", () => {
    vi.useFakeTimers();
    const decide = vi.fn().mockResolvedValue(undefined);
    const card = approvalCard(approval({ tool: "delete_file", scope: "qc:files:delete" }), now, { decide });
    const approve = card.querySelector<HTMLButtonElement>("button.approve")!;
    const allow = card.querySelector<HTMLButtonElement>("button.allow")!;
    const deny = card.querySelector<HTMLButtonElement>("button.deny")!;
    expect(approve.classList.contains("arming")).toBe(true);
    expect(allow.classList.contains("arming")).toBe(true);
    expect(approve.style.getPropertyValue("--arm-ms")).toBe("800ms");
    expect(deny.disabled).toBe(false);
    expect(deny.classList.contains("arming")).toBe(false);
    vi.advanceTimersByTime(800);
    expect(approve.classList.contains("arming")).toBe(false);
    expect(approve.disabled).toBe(false);
    deny.click();
    expect(decide).toHaveBeenCalledWith("a-1", "deny", undefined);
  });
});

describe("approvals view", () => {
  function fakeApi(pending: ApprovalView[]) {
    return { approvals: vi.fn().mockResolvedValue(pending), decide: vi.fn().mockResolvedValue(undefined) };
  }

  it("focuses Deny on a new request and announces it, without taking the focus from a card in use", async () => {
    const api = fakeApi([approval()]);
    const view = approvalsView(api as never, vi.fn());
    document.body.replaceChildren(view.root);
    await view.refresh();
    const first = view.root.querySelector<HTMLElement>('.approval-card[data-id="a-1"]')!;
    expect(document.activeElement).toBe(first.querySelector("button.deny"));
    const live = view.root.querySelector("#approval-announcer")!;
    expect(live.getAttribute("aria-live")).toBe("assertive");
    expect(live.textContent).toContain("Claude Desktop, Stop the live algorithm of project 123");

    // The trader is reading the first card's arguments when a second request arrives.
    first.querySelector<HTMLElement>("details summary")!.setAttribute("tabindex", "0");
    first.querySelector<HTMLElement>("details summary")!.focus();
    api.approvals.mockResolvedValue([approval(), approval({ id: "a-2", tool: "delete_project", scope: "qc:projects:delete", arguments: { projectId: 7 } })]);
    await view.refresh();
    expect(view.root.querySelector('.approval-card[data-id="a-1"]')).toBe(first);
    expect(document.activeElement).toBe(first.querySelector("details summary"));
    expect(live.textContent).toContain("Delete project 7");

    // With the focus elsewhere, the next one takes it.
    (document.activeElement as HTMLElement).blur();
    api.approvals.mockResolvedValue([approval(), approval({ id: "a-3", tool: "delete_file", scope: "qc:files:delete" })]);
    await view.refresh();
    expect(document.activeElement).toBe(view.root.querySelector('.approval-card[data-id="a-3"] button.deny'));
    expect(view.root.querySelectorAll(".approval-card")).toHaveLength(2);
  });

  it("Esc from outside the cards denies the request on top", async () => {
    const api = fakeApi([approval(), approval({ id: "a-2" })]);
    const view = approvalsView(api as never, vi.fn());
    document.body.replaceChildren(view.root);
    await view.refresh();
    key(view.root.querySelector("h2")!, "Escape");
    expect(api.decide).toHaveBeenCalledExactlyOnceWith("a-1", "deny", undefined);
    // Until the broker's answer removes it, the denied card is skipped: the next Esc is for the next one.
    expect(view.escape()).toBe(true);
    expect(api.decide).toHaveBeenLastCalledWith("a-2", "deny", undefined);
    expect(view.escape()).toBe(false);
  });
});

describe("the requester", () => {
  it("is shown with its program and the code its client shows too", () => {
    const card = approvalCard(approval({ code: "3FA9", host: "Claude Desktop (/usr/bin/claude-desktop)" }), now, { decide: vi.fn() }, 0);
    expect(card.querySelector(".request-code")?.textContent).toBe("code 3FA9");
    expect(card.querySelector("dd.host")?.textContent).toBe("Claude Desktop (/usr/bin/claude-desktop)");
    const plain = approvalCard(approval(), now, { decide: vi.fn() }, 0);
    expect(plain.querySelector(".request-code")).toBeNull();
  });
});

describe("standing allowances", () => {
  it("lists each with its client and time left, and revokes one", async () => {
    const { allowanceList } = await import("./approvals");
    const revoke = vi.fn();
    const list = allowanceList([
      { session_id: "s-1", client_id: "c1", client_name: "Claude Desktop", tool: "delete_backtest", seconds_left: 290 },
      { session_id: "s-2", client_id: "c2", client_name: "", tool: "delete_object", seconds_left: 42 },
    ], revoke);
    const items = [...list.querySelectorAll("li")].map((li) => li.textContent);
    expect(items).toEqual(["delete_backtest for Claude Desktop · 5 min left Revoke", "delete_object for c2 · 42 s left Revoke"]);
    list.querySelectorAll<HTMLButtonElement>("button.revoke-allowance")[1].click();
    expect(revoke).toHaveBeenCalledWith(expect.objectContaining({ session_id: "s-2", tool: "delete_object" }));
  });

  it("shows them in the view and asks the broker to end one", async () => {
    const allowance = { session_id: "s-1", client_id: "c1", client_name: "Claude Desktop", tool: "delete_backtest", seconds_left: 290 };
    const api = {
      approvals: vi.fn().mockResolvedValue([]),
      allowances: vi.fn().mockResolvedValueOnce([allowance]).mockResolvedValue([]),
      revokeAllowance: vi.fn().mockResolvedValue({ revoked: true }),
    };
    const view = approvalsView(api as never, () => {});
    await view.refresh();
    await vi.waitFor(() => expect(view.root.querySelector(".allowance-list li")).not.toBeNull());
    view.root.querySelector<HTMLButtonElement>("button.revoke-allowance")!.click();
    await vi.waitFor(() => expect(api.revokeAllowance).toHaveBeenCalledWith("s-1", "delete_backtest"));
    await vi.waitFor(() => expect(view.root.querySelector(".allowance-list")).toBeNull());
  });
});

describe("the asking program's icon", () => {
  const base = {
    id: "a-9", kind: "tool_call", client_id: "c", client_name: "Claude", session_id: "s", account: "main",
    tool: "delete_project", scope: "qc:projects:delete", summary: "s", arguments: {}, arguments_digest: "d",
    created: 0, expires: 9_999_999_999, host: "Claude Desktop: /usr/bin/claude-desktop", host_program: "/usr/bin/claude-desktop",
  } as unknown as ApprovalView;
  const settle = () => new Promise((r) => setTimeout(r, 0));

  it("shows the icon the desktop has for the program beside its name, and nothing where there is none", async () => {
    const hostIcon = vi.fn().mockResolvedValue("data:image/png;base64,iVBORw0KGgo=");
    const card = approvalCard(base, Date.now(), { decide: vi.fn(), hostIcon }, 0);
    await settle();
    expect(hostIcon).toHaveBeenCalledWith("/usr/bin/claude-desktop");
    const img = card.querySelector<HTMLImageElement>("header img.host-icon")!;
    expect(img.hidden).toBe(false);
    expect(img.getAttribute("alt")).toBe("");
    expect(img.src).toMatch(/^data:image\/png;base64,/);
    const none = approvalCard(base, Date.now(), { decide: vi.fn(), hostIcon: vi.fn().mockResolvedValue(null) }, 0);
    await settle();
    expect(none.querySelector<HTMLImageElement>("img.host-icon")!.hidden).toBe(true);
    const odd = approvalCard(base, Date.now(), { decide: vi.fn(), hostIcon: vi.fn().mockResolvedValue("https://example.com/x.png") }, 0);
    await settle();
    expect(odd.querySelector<HTMLImageElement>("img.host-icon")!.hidden).toBe(true);
    expect(approvalCard({ ...base, host_program: undefined } as ApprovalView, Date.now(), { decide: vi.fn(), hostIcon }, 0).querySelector("img")).toBeNull();
  });
});
