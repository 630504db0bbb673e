import { describe, expect, it, vi } from "vitest";
import type { AccountView } from "../bindings";
import { accountForm, accountsView } from "./accounts";

const main: AccountView = { id: "main", user_id: "123456", organization_id: null, created: 0 };

function type(root: HTMLElement, id: string, value: string) {
  (root.querySelector(`#${id}`) as HTMLInputElement).value = value;
}

describe("account form", () => {
  it("sends what was typed, forgets the token once saved, and hands the account on", async () => {
    const api = { addAccount: vi.fn().mockResolvedValue(main) };
    const saved = vi.fn();
    const { form, first } = accountForm(api as never, saved);
    expect(first.id).toBe("account-name");
    expect((form.querySelector("#account-token") as HTMLInputElement).type).toBe("password");
    type(form, "account-user", "123456");
    type(form, "account-token", "s3cr3t");
    form.querySelector<HTMLButtonElement>("#account-add")!.click();
    await vi.waitFor(() => expect(saved).toHaveBeenCalledWith(main));
    expect(api.addAccount).toHaveBeenCalledWith({ name: "main", user_id: "123456", organization_id: null, api_token: "s3cr3t" });
    expect((form.querySelector("#account-token") as HTMLInputElement).value).toBe("");
    expect(form.querySelector("#account-status .notice.ok")?.textContent).toContain("works and is saved");
  });

  it("says in plain words why QuantConnect refused, and keeps what was typed", async () => {
    const api = { addAccount: vi.fn().mockRejectedValue(new Error("QuantConnect refused the credentials")) };
    const saved = vi.fn();
    const { form } = accountForm(api as never, saved, null);
    expect(form.querySelector("h3")).toBeNull();
    type(form, "account-token", "s3cr3t");
    form.dispatchEvent(new Event("submit", { cancelable: true }));
    await vi.waitFor(() => expect(form.querySelector("#account-status .notice.error")?.textContent).toBe("QuantConnect refused the credentials"));
    expect(saved).not.toHaveBeenCalled();
    expect((form.querySelector("#account-token") as HTMLInputElement).value).toBe("s3cr3t");
  });
});

describe("accounts view", () => {
  it("lists the new account after the shared form saves it", async () => {
    const api = { addAccount: vi.fn().mockResolvedValue(main), accounts: vi.fn().mockResolvedValueOnce([]).mockResolvedValue([main]) };
    const changed = vi.fn();
    const view = accountsView(api as never, changed);
    await view.refresh();
    expect(view.root.querySelector("#account-list")?.textContent).toContain("No account yet");
    expect(view.root.querySelector("#account-form h3")?.textContent).toBe("Add an account");
    view.root.querySelector<HTMLButtonElement>("#account-add")!.click();
    await vi.waitFor(() => expect(changed).toHaveBeenCalledOnce());
    expect(view.root.querySelector('#account-list .card.account[data-account="main"]')).not.toBeNull();
  });
});

describe("renaming an account", () => {
  it("opens a labelled field with the focus in it", async () => {
    const api = { accounts: vi.fn().mockResolvedValue([main]) };
    const view = accountsView(api as never, vi.fn());
    document.body.replaceChildren(view.root);
    await view.refresh();
    [...view.root.querySelectorAll<HTMLButtonElement>(".card.account button")].find((b) => b.textContent === "Rename")!.click();
    const field = view.root.querySelector<HTMLInputElement>("#rename-main")!;
    expect(field.getAttribute("aria-label")).toBe("New name for account main");
    expect(document.activeElement).toBe(field);
  });
});
