// Generated from the Rust types by `UPDATE_BINDINGS=1 cargo test -p keybridge-app bindings`; do not edit.

export type StatusView = { version: string, paused: boolean, data_dir: string, 
/**
 * QuantConnect's API base URL, or the simulator's.
 */
quantconnect: string, sessions: number, pending_approvals: number, signing_key: string, 
/**
 * Refused connections and tokens since the broker started, per client and reason.
 */
auth_failures: Array<AuthFailureCount>, };

export type AccountView = { id: string, user_id: string, organization_id: string | null, 
/**
 * Unix seconds.
 */
created: number, };

export type SessionView = { session_id: string, 
/**
 * The program that started the bridge, when known.
 */
host: string | null, started: number, };

export type ClientView = { client_id: string, name: string, account: string, preset: string | null, scopes: Array<string>, 
/**
 * Scope → what the client's own policy says of it, over the defaults.
 */
policy: { [key in string]: PolicyDecision }, token_ttl_secs: number, 
/**
 * `host` (host-bound pairing) or `key` (client key).
 */
mode: ClientMode, approved_hosts: Array<string>, revoked: boolean, created: number, last_seen: number | null, sessions: Array<SessionView>, limits: ClientLimits, };

export type ClientAdded = { client_id: string, client_key: string | null, };

export type ApprovalKind = "tool_call" | "pairing";

export type ApprovalView = { id: string, kind: ApprovalKind, client_id: string, client_name: string, session_id: string | null, account: string, tool: string | null, scope: string | null, 
/**
 * What will happen, in plain words.
 */
summary: string, 
/**
 * The exact arguments, brokerage credentials redacted.
 */
arguments: unknown, arguments_digest: string, created: number, 
/**
 * Unix seconds at which silence becomes a denial.
 */
expires: number, 
/**
 * A short code the waiting client shows too, so the human can tell which request is whose.
 */
code?: string, 
/**
 * The program the asking client runs in, as Keybridge named it when it connected.
 */
host?: string, 
/**
 * That program's path alone, for the window to show the program's icon beside its name.
 */
host_program?: string, 
/**
 * What the call will touch, as the broker looked it up on its own authority: for the human
 * only, never sent to the client that asks.
 */
preview?: ConsequencePreview, };

export type AuditRecordView = { seq: number, 
/**
 * Unix milliseconds.
 */
ts: number, 
/**
 * `kind` says what happened; the other fields depend on it.
 */
event: Record<string, unknown>, };

export type AuditVerified = { intact: boolean, records: number, files: number, };

export type AuditExported = { file: string, };

export type ConsequencePreview = { 
/**
 * "Holdings:", "Will deploy:", "Will delete:", "Will cost:".
 */
heading: string, lines: Array<string>, 
/**
 * Why part of it could not be looked up; the question is asked all the same.
 */
unavailable?: string, };

export type AllowanceView = { session_id: string, client_id: string, client_name: string, tool: string, 
/**
 * Seconds until it ends.
 */
seconds_left: number, };

export type AuthFailure = "bad_key" | "expired" | "revoked" | "unknown_client" | "other_user" | "pairing_refused" | "invalid_token";

export type AuthFailureCount = { client: string, reason: AuthFailure, count: number, 
/**
 * Unix seconds of the latest.
 */
last: number, };

export type ClientLimits = { 
/**
 * Tool calls started in any 60 seconds.
 */
calls_per_minute: number, 
/**
 * Live deployments (`create_live_algorithm`) sent in any 24 hours.
 */
live_deployments_per_day: number, 
/**
 * Calls at once, from the first check to the answer (waiting for approval included).
 */
calls_in_flight: number, };

export type ClientLimitsUpdate = { calls_per_minute?: number, live_deployments_per_day?: number, calls_in_flight?: number, };

export type SettingsView = { 
/**
 * Lifetime of the access tokens of new clients, 60..=3600.
 */
token_ttl_secs: number, 
/**
 * How long a question waits for the human before it counts as a denial, 10..=600.
 */
approval_timeout_secs: number, 
/**
 * Scope → `allow` / `ask` / `deny` for every client; a client's own overrides win.
 */
policy: { [key in string]: string }, };

export type BrokerEvent = { "type": "audit", record: AuditRecordView, } | { "type": "approval_opened", approval: ApprovalView, } | { "type": "approval_closed", id: string, } | { "type": "client_changed", client: string, } | { "type": "paused", paused: boolean, } | { "type": "settings_changed", settings: SettingsView, } | { "type": "lagged", missed: number, };

export type ErrorCode = "bad_frame" | "unsupported_version" | "not_authenticated" | "pairing_denied" | "token_invalid" | "token_expired" | "revoked" | "paused" | "unknown_tool" | "missing_scope" | "policy_denied" | "approval_denied" | "approval_timed_out" | "cancelled" | "too_large" | "invalid_arguments" | "quant_connect" | "rate_limited" | "not_found" | "invalid" | "limit_reached" | "internal";

export type AppErrorCode = "not_running" | "config" | "autostart";

export type UiErrorCode = ErrorCode | AppErrorCode;

export type UiError = { code: UiErrorCode, message: string, };

export type AppInfo = { version: string, 
/**
 * The built-in simulator stands in for QuantConnect.
 */
demo: boolean, 
/**
 * Why this window has no broker (another one runs, the keychain is locked…); `null` when
 * the broker runs in this app.
 */
problem: string | null, data_dir: string, socket: string, quantconnect: string, 
/**
 * The `keybridge-mcp` MCP clients launch.
 */
bridge: string, };

export type PresetInfo = { name: string, title: string, description: string, scopes: Array<string>, };

export type ScopeInfo = { name: string, description: string, default_policy: PolicyDecision, tools: Array<string>, };

export type NewAccount = { name: string, user_id: string, organization_id: string | null, api_token: string, };

export type NewClient = { name: string, account: string, preset: string | null, scopes: Array<string>, 
/**
 * A client key instead of host-bound pairing (for hosts whose launcher can't be checked).
 */
with_key: boolean, };

export type ConnectPreview = { app: string, path: string, file_exists: boolean, 
/**
 * `added`, `replaced` or `unchanged`.
 */
change: string, previous_entry: string | null, entry: string, server_name: string, 
/**
 * Servers already in the file; they stay as they are.
 */
other_servers: Array<string>, 
/**
 * SHA-256 of the file as previewed: the write is refused if it changed since.
 */
file_digest: string | null, };

export type ConnectDone = { path: string, backup: string | null, change: string, 
/**
 * How to make the client load the server.
 */
next_step: string, };

export type Snippets = { claude_code: string, cursor: string, vscode: string, };

export type ConnectionTest = { 
/**
 * The bridge answered and listed its tools.
 */
ok: boolean, 
/**
 * The command line that was run, as the MCP client will run it.
 */
command: string, 
/**
 * The MCP protocol version the bridge agreed to.
 */
protocol_version: string | null, 
/**
 * The bridge's name and version, as it reports them to MCP clients.
 */
server: string | null, 
/**
 * The tools the MCP client will see.
 */
tools: Array<string>, 
/**
 * Plain words: what worked, or what failed and what to do.
 */
message: string, };

export type AccountRemoved = { removed: boolean, };

export type AccountTested = { account: string, ok: boolean, };

export type ClientRevoked = { revoked: string, };

export type ClientUpdated = { updated: string, scopes: Array<string>, limits: ClientLimits, };

export type SessionEnded = { ended: boolean, };

export type PauseState = { paused: boolean, };

export type KeysRotated = { kid: string, };

export type ApprovalDecided = { approval: string, decision: string, };

export type AllowanceRevoked = { revoked: boolean, };

export type PolicyDecision = "allow" | "ask" | "deny";

export type ClientMode = "host" | "key";
