import { beforeEach, describe, expect, it, vi } from "vitest";

const invoke = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...args: unknown[]) => invoke(...args) }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

const { api, CommandError } = await import("./ipc");

describe("ipc", () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  it("calls the commands by their Rust names with camelCase arguments", async () => {
    invoke.mockResolvedValue({ approval: "a-1", decision: "approved" });
    await api.decide("a-1", "allow_for", 15);
    expect(invoke).toHaveBeenCalledWith("approval_decide", { approvalId: "a-1", decision: "allow_for", minutes: 15 });
    await api.connectPreview("c1");
    expect(invoke).toHaveBeenLastCalledWith("connect_preview", { clientId: "c1" });
  });

  it("turns a command's {code, message} into an error with plain words", async () => {
    invoke.mockRejectedValue({ code: "paused", message: "access is paused in Keybridge" });
    const error = await api.status().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect((error as InstanceType<typeof CommandError>).code).toBe("paused");
    expect((error as Error).message).toBe("access is paused in Keybridge");
  });

  it("reports anything else as an internal error, still as text", async () => {
    invoke.mockRejectedValue("window closed");
    const error = (await api.accounts().catch((e: unknown) => e)) as InstanceType<typeof CommandError>;
    expect(error.code).toBe("internal");
    expect(error.message).toBe("window closed");
  });
});
