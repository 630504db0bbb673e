// Accounts: QuantConnect credentials, checked before they are saved. The token goes into the
// OS keychain and is never shown again.
import type { AccountView } from "../bindings";
import { button, field, fill, h, input, notice } from "../dom";
import type { Api } from "../ipc";

/** The form that adds an account; the Accounts view and the first-run guide share it. */
export function accountForm(api: Api, onSaved: (account: AccountView) => void | Promise<void>, heading: string | null = "Add an account") {
  const status = h("div", { class: "form-status", id: "account-status" });
  const name = input("account-name", { placeholder: "main", value: "main" });
  const user = input("account-user", { placeholder: "123456", inputmode: "numeric" });
  const token = input("account-token", { type: "password", placeholder: "paste the API token" });
  const org = input("account-org", { placeholder: "optional" });
  const add = button("Check and save", () => void save(), "primary", "account-add");

  async function save() {
    add.disabled = true;
    fill(status, notice("info", "Checking with QuantConnect…"));
    try {
      const account = await api.addAccount({
        name: name.value,
        user_id: user.value,
        organization_id: org.value || null,
        api_token: token.value,
      });
      token.value = "";
      fill(status, notice("ok", `Account “${account.id}” works and is saved. Its token is in the OS keychain.`));
      await onSaved(account);
    } catch (e) {
      fill(status, notice("error", (e as Error).message));
    } finally {
      add.disabled = false;
    }
  }

  const form = h(
    "form",
    { class: "panel", id: "account-form", on: { submit: (e) => (e.preventDefault(), void save()) } },
    heading ? h("h3", null, heading) : null,
    h("p", { class: "muted" }, "Find your user id and API token at quantconnect.com → Settings → API."),
    h("div", { class: "grid" }, field("Name", name, "how clients refer to it"), field("User id", user), field("API token", token, "checked, then kept in the OS keychain"), field("Organization id", org)),
    h("div", { class: "actions" }, add),
    status,
  );
  return { form, first: name };
}

export function accountsView(api: Api, onChange: () => void) {
  const root = h("section", { class: "view", id: "view-accounts" });
  const list = h("div", { class: "cards", id: "account-list" });
  const { form } = accountForm(api, async () => {
    await refresh();
    onChange();
  });

  function card(account: AccountView): HTMLElement {
    const result = h("div", { class: "card-status" });
    const show = (kind: "ok" | "error", text: string) => fill(result, notice(kind, text));
    const renameBox = h("span", { class: "inline-form" });
    return h(
      "article",
      { class: "card account", data: { account: account.id } },
      h("header", null, h("strong", null, account.id), h("span", { class: "muted" }, ` user ${account.user_id}${account.organization_id ? ` · organization ${account.organization_id}` : ""}`)),
      h("p", { class: "muted" }, "API token: stored in the OS keychain (never shown)."),
      h(
        "div",
        { class: "actions" },
        button("Test", async () => {
          try {
            await api.testAccount(account.id);
            show("ok", "QuantConnect accepted the credentials.");
          } catch (e) {
            show("error", (e as Error).message);
          }
        }, "secondary test-account"),
        button("Rename", () => {
          const next = input(`rename-${account.id}`, { value: account.id, "aria-label": `New name for account ${account.id}` });
          fill(renameBox, next, button("Save", async () => {
            try {
              await api.renameAccount(account.id, next.value);
              await refresh();
              onChange();
            } catch (e) {
              show("error", (e as Error).message);
            }
          }, "primary"), button("Cancel", () => fill(renameBox), "secondary"));
          next.focus();
        }, "secondary"),
        button("Remove…", () => {
          fill(result, h("div", { class: "confirm" },
            `Remove “${account.id}”? Its token is deleted from the keychain and its clients stop working.`,
            button("Remove", async () => {
              try {
                await api.removeAccount(account.id);
                await refresh();
                onChange();
              } catch (e) {
                show("error", (e as Error).message);
              }
            }, "danger confirm-remove"),
            button("Keep it", () => fill(result), "secondary")));
        }, "danger-outline"),
        renameBox,
      ),
      result,
    );
  }

  async function refresh() {
    try {
      const accounts = await api.accounts();
      fill(list, ...(accounts.length ? accounts.map(card) : [h("p", { class: "empty" }, "No account yet: add one below.")]));
    } catch (e) {
      fill(list, notice("error", (e as Error).message));
    }
  }

  fill(
    root,
    h("h2", null, "Accounts"),
    h("p", { class: "lead" }, "Your QuantConnect credentials. Keybridge signs every request itself; no client ever sees the token."),
    list,
    form,
  );
  return { root, refresh };
}
