// Clients: the MCP clients paired with Keybridge, what each may do, and connecting them.
import type { AuthFailure, AuthFailureCount, ClientView, ConnectDone, ConnectionTest, ConnectPreview, PresetInfo } from "../bindings";
import { button, field, fill, h, input, notice } from "../dom";
import { timeAgo } from "../format";
import type { Api } from "../ipc";

/** The preset picker: each preset says in plain words what it allows. */
export function presetPicker(presets: PresetInfo[], name: string, current: string): HTMLElement {
  return h(
    "div",
    { class: "presets", attrs: { role: "radiogroup", "aria-label": "What the client may do" } },
    ...presets.map((p) => {
      const radio = h("input", { attrs: { type: "radio", name, value: p.name } });
      radio.checked = p.name === current;
      return h("label", { class: `preset ${p.name}` }, radio, h("strong", null, p.title), h("span", null, p.description), h("small", { class: "muted" }, `${p.scopes.length} scopes`));
    }),
  );
}

export function checkedPreset(root: HTMLElement, name: string): string {
  return root.querySelector<HTMLInputElement>(`input[name="${name}"]:checked`)?.value ?? "";
}

/** What connecting will change, before anything is written. */
export function previewPanel(preview: ConnectPreview, onApply: () => void, onCancel: () => void): HTMLElement {
  const what =
    preview.change === "unchanged"
      ? "Claude Desktop is already set up for this client."
      : preview.change === "replaced"
        ? `The existing “${preview.server_name}” server will be replaced.`
        : `A “${preview.server_name}” server will be added.`;
  return h(
    "div",
    { class: "panel connect-preview", id: "connect-preview" },
    h("h4", null, `Connect ${preview.app}`),
    h("p", null, h("span", { class: "muted" }, "File: "), h("code", null, preview.path), preview.file_exists ? "" : " (will be created)"),
    h("p", null, what),
    preview.other_servers.length
      ? h("p", { class: "keeps" }, "Kept as they are: ", ...preview.other_servers.flatMap((s, i) => [i ? ", " : "", h("code", null, s)]))
      : null,
    preview.previous_entry ? h("details", null, h("summary", null, "Current entry"), h("pre", null, preview.previous_entry)) : null,
    h("pre", { class: "entry" }, preview.entry),
    h("p", { class: "muted" }, "The current file is backed up beside it first, and replaced in one step. No secret goes into it."),
    h("div", { class: "actions" }, button(preview.change === "unchanged" ? "Done" : "Write it", onApply, "primary", "connect-apply"), button("Cancel", onCancel, "secondary")),
  );
}

/** What connecting wrote, and how to make Claude Desktop load it. */
export function connectResult(done: ConnectDone): HTMLElement {
  return h("div", { class: "notice ok", id: "connect-result", attrs: { role: "status" } },
    h("p", null, done.change === "unchanged" ? "Nothing to change." : `Claude Desktop is connected: ${done.path}`),
    done.backup ? h("p", null, "Previous file saved as ", h("code", null, done.backup)) : null,
    h("p", null, done.next_step));
}

/** Why the config could not be previewed or written; the file is left as it was. */
export function connectError(message: string): HTMLElement {
  return h("div", { class: "notice error", id: "connect-error", attrs: { role: "alert" } }, message);
}

function plural(n: number, one: string): string {
  return `${n} ${one}${n === 1 ? "" : "s"}`;
}

/** What the bridge answered when run exactly as the MCP client will run it. */
export function connectionTestResult(test: ConnectionTest): HTMLElement {
  return h(
    "div",
    { class: `connection-test ${test.ok ? "ok" : "error"}`, attrs: { role: test.ok ? "status" : "alert" } },
    h("p", { class: "message" }, test.message),
    h("dl", { class: "facts" },
      h("dt", null, "Command"), h("dd", null, h("code", { class: "command" }, test.command)),
      h("dt", null, "Protocol"), h("dd", { class: "protocol" }, test.protocol_version ?? "none agreed"),
      h("dt", null, "Server"), h("dd", { class: "server" }, test.server ?? "did not say")),
    // A failed start lists no tools: saying "0 tools" there would only distract from the message.
    test.ok || test.tools.length
      ? h("div", { class: "tools" }, h("p", { class: "tool-count" }, `${plural(test.tools.length, "tool")} Claude will see`), h("ul", { class: "tool-list" }, ...test.tools.map((t) => h("li", null, t))))
      : null,
  );
}

/** A button that runs the client's bridge as Claude would and shows what came back in `box`. */
export function testConnectionButton(api: Api, clientId: string, box: HTMLElement, id?: string): HTMLButtonElement {
  const run = button("Test connection", async () => {
    run.disabled = true;
    fill(box, notice("info", "Running keybridge-mcp as Claude will…"));
    try {
      fill(box, connectionTestResult(await api.testConnection(clientId)));
    } catch (e) {
      fill(box, h("div", { class: "connection-test error", attrs: { role: "alert" } }, h("p", { class: "message" }, (e as Error).message)));
    } finally {
      run.disabled = false;
    }
  }, "secondary test-connection", id);
  return run;
}

export function clientsView(api: Api) {
  const root = h("section", { class: "view", id: "view-clients" });
  const list = h("div", { class: "cards", id: "client-list" });
  const formBox = h("div");
  let presets: PresetInfo[] = [];

  function copyable(label: string, text: string): HTMLElement {
    const pre = h("pre", { class: "snippet" }, text);
    return h("div", { class: "copyable" }, h("div", { class: "copy-head" }, h("strong", null, label), button("Copy", () => {
      void navigator.clipboard?.writeText(text).catch(() => undefined);
      const range = document.createRange();
      range.selectNodeContents(pre);
      window.getSelection()?.removeAllRanges();
      window.getSelection()?.addRange(range);
    }, "secondary small")), pre);
  }

  function card(client: ClientView): HTMLElement {
    const panel = h("div", { class: "client-panel" });
    const show = (kind: "ok" | "error" | "info", text: string) => fill(panel, notice(kind, text));
    const connect = async () => {
      try {
        const preview = await api.connectPreview(client.client_id);
        fill(panel, previewPanel(preview, async () => {
          try {
            fill(panel, connectResult(await api.connectApply(client.client_id, preview.file_digest)));
          } catch (e) {
            show("error", (e as Error).message);
          }
        }, () => fill(panel)));
      } catch (e) {
        fill(panel, connectError((e as Error).message));
      }
    };
    const snippets = async () => {
      try {
        const s = await api.snippets(client.client_id);
        fill(panel, h("div", { class: "panel" }, h("h4", null, "Other MCP clients"),
          copyable("Claude Code (run in a terminal)", s.claude_code),
          copyable("Cursor (~/.cursor/mcp.json)", s.cursor),
          copyable("VS Code (.vscode/mcp.json)", s.vscode)));
      } catch (e) {
        show("error", (e as Error).message);
      }
    };
    const edit = () => {
      const picker = presetPicker(presets, `edit-${client.client_id}`, client.preset ?? "");
      fill(panel, h("div", { class: "panel" }, h("h4", null, "What may this client do?"), picker,
        h("div", { class: "actions" }, button("Save", async () => {
          try {
            await api.updateClient(client.client_id, checkedPreset(picker, `edit-${client.client_id}`), []);
            await refresh();
          } catch (e) {
            show("error", (e as Error).message);
          }
        }, "primary"), button("Cancel", () => fill(panel), "secondary"))));
    };
    const revoke = () => {
      fill(panel, h("div", { class: "confirm" }, `Revoke “${client.name}”? Its sessions end now and it cannot connect again.`,
        button("Revoke", async () => {
          try {
            await api.revokeClient(client.client_id);
            await refresh();
          } catch (e) {
            show("error", (e as Error).message);
          }
        }, "danger confirm-revoke"), button("Keep it", () => fill(panel), "secondary")));
    };
    const sessions = client.sessions.length
      ? h("ul", { class: "sessions" }, ...client.sessions.map((s) => h("li", null, h("span", { class: "dot live" }), `${s.host ?? "session"} · started ${timeAgo(s.started, Date.now())} `, button("End", async () => {
          await api.endSession(s.session_id).catch((e: Error) => show("error", e.message));
          await refresh();
        }, "link"))))
      : h("p", { class: "muted" }, "No live session.");
    return h(
      "article",
      { class: `card client ${client.revoked ? "revoked" : ""}`, data: { client: client.client_id } },
      h("header", null, h("strong", null, client.name), h("span", { class: `badge ${client.preset ?? "custom"}` }, client.preset ?? "custom"), client.revoked ? h("span", { class: "badge bad" }, "revoked") : null),
      h("dl", { class: "facts" },
        h("dt", null, "Account"), h("dd", null, client.account),
        h("dt", null, "Pairing"), h("dd", null, client.mode === "key" ? "client key" : client.approved_hosts.length ? `host-bound: ${client.approved_hosts.join(", ")}` : "host-bound, not yet paired"),
        h("dt", null, "Last seen"), h("dd", null, timeAgo(client.last_seen, Date.now())),
        h("dt", null, "Id"), h("dd", { class: "mono" }, client.client_id)),
      h("details", { class: "scopes" }, h("summary", null, `${client.scopes.length} scopes`), h("p", { class: "mono" }, client.scopes.join(" "))),
      client.revoked ? null : limitsEditor(api, client, refresh, show),
      sessions,
      client.revoked
        ? null
        : h("div", { class: "actions" },
            button("Connect Claude Desktop…", () => void connect(), "primary connect-claude"),
            button("Other clients…", () => void snippets(), "secondary"),
            testConnectionButton(api, client.client_id, panel),
            button("Edit scopes", edit, "secondary"),
            button("Revoke…", revoke, "danger-outline")),
      panel,
    );
  }

  // Built once: a refresh must not wipe what the form says (a client key is shown only once).
  const accountSelect = h("select", { id: "client-account" });
  const accountHint = h("div");
  async function refreshAccounts() {
    const accounts = await api.accounts().catch(() => []);
    const chosen = accountSelect.value;
    fill(accountSelect, ...accounts.map((a) => h("option", { attrs: { value: a.id } }, a.id)));
    if (accounts.some((a) => a.id === chosen)) accountSelect.value = chosen;
    fill(accountHint, accounts.length ? null : notice("info", "Add a QuantConnect account first."));
  }
  function renderForm() {
    const name = input("client-name", { value: "Claude Desktop" });
    const picker = presetPicker(presets, "preset", "research");
    const withKey = h("input", { id: "client-key-mode", attrs: { type: "checkbox" } });
    const status = h("div", { class: "form-status", id: "client-status" });
    const create = button("Create client", async () => {
      try {
        const added = await api.addClient({ name: name.value, account: accountSelect.value, preset: checkedPreset(picker, "preset"), scopes: [], with_key: withKey.checked });
        fill(status, added.client_key
          ? h("div", { class: "notice ok" }, h("p", null, `Client ${added.client_id} created. Its key is shown this once:`), h("pre", { class: "secret-once" }, added.client_key), h("p", null, "Give it to the client as KEYBRIDGE_CLIENT_KEY; Keybridge keeps only a hash."))
          : notice("ok", `Client ${added.client_id} created. Connect it above.`));
        await refresh();
      } catch (e) {
        fill(status, notice("error", (e as Error).message));
      }
    }, "primary", "client-add");
    fill(formBox, h("div", { class: "panel", id: "client-form" },
      h("h3", null, "New client"),
      accountHint,
      h("div", { class: "grid" }, field("Name", name), field("Account", accountSelect)),
      h("p", { class: "label" }, "What may it do?"),
      picker,
      h("label", { class: "check" }, withKey, " Use a client key instead of pairing (for programs Keybridge cannot recognise, such as a terminal)"),
      h("div", { class: "actions" }, create),
      status));
  }

  async function refresh() {
    try {
      if (!presets.length) presets = await api.presets();
      const clients = await api.clients();
      const live = clients.filter((c) => !c.revoked);
      const gone = clients.filter((c) => c.revoked);
      const status = api.status ? await api.status().catch(() => null) : null;
      fill(list, ...(live.length ? live.map(card) : [h("p", { class: "empty" }, "No client yet: create one below, then connect it.")]),
        gone.length ? h("details", { class: "revoked-list" }, h("summary", null, `${gone.length} revoked`), ...gone.map(card)) : null,
        refusedConnections(status?.auth_failures ?? [], Date.now()));
    } catch (e) {
      fill(list, notice("error", (e as Error).message));
    }
    if (!formBox.firstChild) renderForm();
    await refreshAccounts();
  }

  fill(root, h("h2", null, "Clients"), h("p", { class: "lead" }, "Each MCP client gets its own scopes and short-lived tokens. Nothing it runs can reach beyond them."), list, formBox);
  return { root, refresh };
}

/** A refusal's reason in a trader's words. */
const REFUSED_BECAUSE: Record<AuthFailure, string> = {
  bad_key: "wrong or missing client key",
  expired: "token expired",
  revoked: "client revoked",
  unknown_client: "no such client",
  other_user: "another user of this computer",
  pairing_refused: "first connection not approved",
  invalid_token: "forged or damaged token",
};

/** Connections and tokens the broker refused since it started, most recent first; nothing when none. */
export function refusedConnections(failures: AuthFailureCount[], nowMs: number): HTMLElement | null {
  if (!failures.length) return null;
  const rows = [...failures].sort((a, b) => b.last - a.last);
  const total = rows.reduce((sum, f) => sum + f.count, 0);
  return h(
    "section",
    { class: "card refused", attrs: { "aria-labelledby": "refused-heading" } },
    h("h3", { id: "refused-heading" }, `Refused connections: ${total}`),
    h("p", { class: "muted" }, "Since Keybridge started. A burst of them raises a notification."),
    h("table", null,
      h("thead", null, h("tr", null, h("th", { attrs: { scope: "col" } }, "Client"), h("th", { attrs: { scope: "col" } }, "Why"), h("th", { attrs: { scope: "col" } }, "Times"), h("th", { attrs: { scope: "col" } }, "Last"))),
      h("tbody", null, ...rows.map((f) => h("tr", { data: { client: f.client, reason: f.reason } },
        h("td", { class: "mono" }, f.client), h("td", null, REFUSED_BECAUSE[f.reason] ?? f.reason), h("td", null, String(f.count)), h("td", null, timeAgo(f.last, nowMs)))))),
  );
}

/** What one client may do at most, whatever its scopes: shown in a line, changed in place. */
export function limitsEditor(
  api: Pick<Api, "clientLimits">,
  client: ClientView,
  refresh: () => Promise<void>,
  show: (kind: "error" | "ok", text: string) => void,
): HTMLElement {
  const limits = client.limits;
  const number = (id: string, value: number, max: number) =>
    input(`${id}-${client.client_id}`, { type: "number", min: "1", max: String(max), step: "1", value: String(value) });
  const perMinute = number("limit-calls-per-minute", limits.calls_per_minute, 1000000);
  const perDay = number("limit-live-deployments", limits.live_deployments_per_day, 1000);
  const atOnce = number("limit-calls-in-flight", limits.calls_in_flight, 10000);
  const save = button("Save limits", async () => {
    try {
      await api.clientLimits(client.client_id, {
        calls_per_minute: Number(perMinute.value),
        live_deployments_per_day: Number(perDay.value),
        calls_in_flight: Number(atOnce.value),
      });
      show("ok", `Limits of ${client.name} saved.`);
      await refresh();
    } catch (e) {
      show("error", (e as Error).message);
    }
  }, "secondary save-limits");
  return h(
    "details",
    { class: "limits" },
    h("summary", null, `Limits: ${limits.calls_per_minute} calls a minute · ${limits.live_deployments_per_day} live deployments a day · ${limits.calls_in_flight} at once`),
    h("p", { class: "muted" }, "A call past a limit is refused with the limit named, and the refusal is in Activity."),
    field("Calls a minute", perMinute),
    field("Live deployments a day", perDay),
    field("Calls at once", atOnce),
    save,
  );
}
