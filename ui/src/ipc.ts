// The only module that talks to the app: every command and event of the window goes through
// here, typed with the declarations generated from Rust (bindings.ts).
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type {
  AccountRemoved,
  AccountTested,
  AccountView,
  AllowanceRevoked,
  ApprovalDecided,
  ClientRevoked,
  ClientUpdated,
  KeysRotated,
  PauseState,
  SessionEnded,
  AllowanceView,
  AppInfo,
  ApprovalView,
  AuditRecordView,
  AuditVerified,
  BrokerEvent,
  ClientAdded,
  ClientLimitsUpdate,
  ClientView,
  ConnectDone,
  ConnectionTest,
  ConnectPreview,
  NewAccount,
  NewClient,
  PresetInfo,
  ScopeInfo,
  SettingsView,
  Snippets,
  StatusView,
  UiError,
} from "./bindings";

export type * from "./bindings";

/** A command failed: `code` is stable, `message` is plain words for the user. */
export class CommandError extends Error {
  readonly code: string;
  constructor(error: UiError) {
    super(error.message);
    this.code = error.code;
  }
}

function isUiError(value: unknown): value is UiError {
  return typeof value === "object" && value !== null && "code" in value && "message" in value;
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (error) {
    if (isUiError(error)) throw new CommandError(error);
    throw new CommandError({ code: "internal", message: String(error) });
  }
}

export type Decision = "approve" | "deny" | "allow_for";

export const api = {
  appInfo: () => call<AppInfo>("app_info"),
  status: () => call<StatusView>("status"),
  accounts: () => call<AccountView[]>("accounts_list"),
  addAccount: (account: NewAccount) => call<AccountView>("account_add", { account }),
  testAccount: (name: string) => call<AccountTested>("account_test", { name }),
  renameAccount: (name: string, newName: string) => call<AccountView>("account_rename", { name, newName }),
  removeAccount: (name: string) => call<AccountRemoved>("account_remove", { name }),
  clients: () => call<ClientView[]>("clients_list"),
  addClient: (client: NewClient) => call<ClientAdded>("client_add", { client }),
  updateClient: (clientId: string, preset: string | null, scopes: string[]) =>
    call<ClientUpdated>("client_update", { clientId, preset, scopes }),
  clientLimits: (clientId: string, limits: ClientLimitsUpdate) => call<ClientUpdated>("client_limits", { clientId, limits }),
  revokeClient: (clientId: string) => call<ClientRevoked>("client_revoke", { clientId }),
  endSession: (sessionId: string) => call<SessionEnded>("session_end", { sessionId }),
  presets: () => call<PresetInfo[]>("presets"),
  scopes: () => call<ScopeInfo[]>("scopes"),
  approvals: () => call<ApprovalView[]>("approvals_list"),
  allowances: () => call<AllowanceView[]>("allowances_list"),
  revokeAllowance: (sessionId: string, tool: string) => call<AllowanceRevoked>("allowance_revoke", { sessionId, tool }),
  decide: (approvalId: string, decision: Decision, minutes?: number) =>
    call<ApprovalDecided>("approval_decide", { approvalId, decision, minutes: minutes ?? null }),
  hostIcon: (program: string) => call<string | null>("host_icon", { program }),
  auditTail: (last: number) => call<AuditRecordView[]>("audit_tail", { last }),
  auditVerify: () => call<AuditVerified>("audit_verify"),
  auditExport: () => call<string>("audit_export"),
  pause: () => call<PauseState>("pause"),
  resume: () => call<PauseState>("resume"),
  settings: () => call<SettingsView>("settings_get"),
  saveSettings: (settings: SettingsView) => call<SettingsView>("settings_update", { settings }),
  rotateKeys: () => call<KeysRotated>("keys_rotate"),
  autostart: () => call<boolean>("autostart_get"),
  setAutostart: (enabled: boolean) => call<boolean>("autostart_set", { enabled }),
  connectPreview: (clientId: string) => call<ConnectPreview>("connect_preview", { clientId }),
  connectApply: (clientId: string, fileDigest: string | null) =>
    call<ConnectDone>("connect_apply", { clientId, fileDigest }),
  snippets: (clientId: string) => call<Snippets>("connect_snippets", { clientId }),
  testConnection: (clientId: string) => call<ConnectionTest>("client_test_connection", { clientId }),
};

export type Api = typeof api;

/** Every record and approval change of the broker, as it happens. */
export function onBrokerEvent(handler: (event: BrokerEvent) => void): Promise<UnlistenFn> {
  return listen<BrokerEvent>("broker-event", (event) => handler(event.payload));
}

/** The tray asks the window to show a view. */
export function onShowView(handler: (view: string) => void): Promise<UnlistenFn> {
  return listen<string>("show-view", (event) => handler(event.payload));
}
