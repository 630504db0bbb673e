// Settings: token lifetime, approval timeout, policy per scope, limits per client, start at
// login, the data folder, and rotating the signing key.
import type { AppInfo, ClientView, PolicyDecision, ScopeInfo, SettingsView } from "../bindings";
import { button, field, fill, h, input, notice } from "../dom";
import type { Api } from "../ipc";
import { limitsEditor } from "./clients";

const DECISIONS: readonly PolicyDecision[] = ["allow", "ask", "deny"];

export function policyTable(scopes: ScopeInfo[], policy: Record<string, string>): HTMLElement {
  return h(
    "table",
    { class: "policy" },
    h("thead", null, h("tr", null, h("th", null, "Scope"), h("th", null, "What it allows"), h("th", null, "Policy"))),
    h(
      "tbody",
      null,
      ...scopes.map((s) => {
        const select = h("select", { data: { scope: s.name }, attrs: { "aria-label": s.name } },
          ...DECISIONS.map((d) => h("option", { attrs: { value: d } }, d === s.default_policy ? `${d} (default)` : d)));
        select.value = policy[s.name] ?? s.default_policy;
        return h("tr", null, h("td", { class: "mono" }, s.name), h("td", { title: s.tools.join(", ") }, s.description), h("td", null, select));
      }),
    ),
  );
}

/** The overrides a policy table holds: only what differs from the defaults. */
export function readPolicy(table: HTMLElement, scopes: ScopeInfo[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const select of table.querySelectorAll<HTMLSelectElement>("select[data-scope]")) {
    const scope = scopes.find((s) => s.name === select.dataset.scope);
    if (scope && select.value !== scope.default_policy) out[scope.name] = select.value;
  }
  return out;
}

/** Scopes that ask by default and would be allowed without asking. */
export function weakened(scopes: ScopeInfo[], policy: Record<string, string>): string[] {
  return scopes.filter((s) => s.default_policy === "ask" && policy[s.name] === "allow").map((s) => s.name);
}

/** Which Keybridge this is and where it keeps things: what a bug report needs. */
export function aboutPanel(app: AppInfo | null): HTMLElement {
  return h("div", { class: "panel", id: "about" },
    h("h3", null, "About"),
    h("p", { id: "about-version" }, app ? `Keybridge ${app.version}` : "Keybridge", app?.demo ? h("span", { class: "badge demo" }, "Demo") : null),
    h("dl", { class: "facts" },
      h("dt", null, "Data folder"), h("dd", { class: "mono", id: "about-data-dir" }, app?.data_dir ?? ""),
      h("dt", null, "Bridge"), h("dd", { class: "mono", id: "about-bridge" }, app?.bridge ?? "")));
}

export function settingsView(api: Api, info: () => AppInfo | null) {
  const root = h("section", { class: "view", id: "view-settings" });
  async function refresh() {
    let settings: SettingsView;
    let scopes: ScopeInfo[];
    let clients: ClientView[] = [];
    try {
      [settings, scopes] = await Promise.all([api.settings(), api.scopes()]);
      clients = api.clients ? (await api.clients().catch(() => [])).filter((c) => !c.revoked) : [];
    } catch (e) {
      // Without a broker the settings are out of reach, but which app this is still helps.
      fill(root, h("h2", null, "Settings"), notice("error", (e as Error).message), aboutPanel(info()));
      return;
    }
    const ttl = input("setting-ttl", { type: "number", min: "1", max: "60", value: String(settings.token_ttl_secs / 60) });
    const timeout = input("setting-timeout", { type: "number", min: "10", max: "600", value: String(settings.approval_timeout_secs) });
    const table = policyTable(scopes, settings.policy);
    const status = h("div", { class: "form-status", id: "settings-status" });
    const autostart = h("input", { id: "setting-autostart", attrs: { type: "checkbox" } });
    const autostartStatus = h("span", { class: "muted" });
    api.autostart().then((on) => (autostart.checked = on)).catch((e: Error) => (autostartStatus.textContent = e.message));
    autostart.addEventListener("change", async () => {
      try {
        autostart.checked = await api.setAutostart(autostart.checked);
        autostartStatus.textContent = autostart.checked ? "Keybridge starts in the tray when you log in." : "";
      } catch (e) {
        autostartStatus.textContent = (e as Error).message;
        autostart.checked = !autostart.checked;
      }
    });
    const keyStatus = h("span", { class: "muted" });
    const limitsStatus = h("div", { class: "form-status", id: "limits-status" });
    const showLimits = (kind: "ok" | "error", text: string) => fill(limitsStatus, notice(kind, text));
    const app = info();
    fill(
      root,
      h("h2", null, "Settings"),
      h("div", { class: "panel" },
        h("h3", null, "Tokens and approvals"),
        h("div", { class: "grid" },
          field("Token lifetime (minutes)", ttl, "for new clients; 1 to 60"),
          field("Approval timeout (seconds)", timeout, "unanswered requests are denied after this; 10 to 600")),
        h("h3", null, "Policy per scope"),
        h("p", { class: "muted" }, "For every client: allow runs at once, ask waits for you, deny refuses. A client only ever uses the scopes it was granted."),
        table,
        h("div", { class: "actions" }, button("Save settings", () => {
          const policy = readPolicy(table, scopes);
          const save = async () => {
            try {
              await api.saveSettings({
                token_ttl_secs: Math.round(Number(ttl.value) * 60),
                approval_timeout_secs: Math.round(Number(timeout.value)),
                policy,
              });
              fill(status, notice("ok", "Saved. New calls follow these settings."));
            } catch (e) {
              fill(status, notice("error", (e as Error).message));
            }
          };
          const unasked = weakened(scopes, policy);
          if (!unasked.length) return void save();
          fill(status, h("div", { class: "confirm", id: "settings-confirm" },
            `With this, Keybridge no longer asks you before: ${unasked.join(", ")}. Any client granted these scopes could then trade live or delete without you. Save anyway?`,
            button("Save anyway", () => void save(), "danger"),
            button("Keep asking", () => fill(status), "secondary")));
        }, "primary", "settings-save")),
        status),
      clients.length
        ? h("div", { class: "panel", id: "client-limits" },
            h("h3", null, "Limits per client"),
            h("p", { class: "muted" }, "However much its scopes allow, a client is refused past these, with the limit named. The defaults are far above what a person working with an assistant does."),
            ...clients.map((client) => h("div", { class: "client-limits", data: { client: client.client_id } }, h("p", { class: "label" }, client.name), limitsEditor(api, client, refresh, showLimits))),
            limitsStatus)
        : null,
      h("div", { class: "panel" },
        h("h3", null, "This computer"),
        h("label", { class: "check" }, autostart, " Start Keybridge at login (in the tray) "), autostartStatus,
        h("dl", { class: "facts" },
          h("dt", null, "Socket"), h("dd", { class: "mono" }, app?.socket ?? ""),
          h("dt", null, "QuantConnect"), h("dd", { class: "mono" }, app?.quantconnect ?? "")),
        h("h3", null, "Signing key"),
        h("p", { class: "muted" }, "Access tokens are signed with a key kept in the OS keychain. Rotating makes a new one; tokens already issued stay valid until they expire."),
        h("div", { class: "actions" }, button("Rotate signing key", async () => {
          try {
            const r = await api.rotateKeys();
            keyStatus.textContent = `New key ${r.kid} in use.`;
          } catch (e) {
            keyStatus.textContent = (e as Error).message;
          }
        }, "secondary"), keyStatus)),
      aboutPanel(app),
    );
  }
  return { root, refresh };
}
