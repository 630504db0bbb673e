import { describe, expect, it, vi } from "vitest";
import type { ApprovalView } from "../bindings";
import { approvalCard } from "./approvals";

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

    const other = approvalCard(approval({ id: "a-2" }), now, { decide }, 0);
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
