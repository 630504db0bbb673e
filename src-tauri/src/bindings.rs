//! The window's TypeScript types (`ui/src/bindings.ts`), generated from the Rust types that
//! cross to it, so the two cannot drift: the test fails when the file is stale.
//! `UPDATE_BINDINGS=1 cargo test -p keybridge-app bindings` rewrites it.

use keybridge_broker_proto::{
    AccountRemoved, AccountTested, AccountView, AllowanceRevoked, AllowanceView, ApprovalDecided, ApprovalKind,
    ApprovalView, AuditExported, AuditRecordView, AuditVerified, AuthFailure, AuthFailureCount, BrokerEvent,
    ClientAdded, ClientLimits, ClientLimitsUpdate, ClientMode, ClientRevoked, ClientUpdated, ClientView,
    ConsequencePreview, ErrorCode, KeysRotated, PauseState, PolicyDecision, SessionEnded, SessionView, SettingsView,
    StatusView,
};
use ts_rs::{Config, TS};

use crate::ipc::{
    AppErrorCode, AppInfo, ConnectDone, ConnectPreview, ConnectionTest, NewAccount, NewClient, PresetInfo, ScopeInfo,
    Snippets, UiError, UiErrorCode,
};

fn render() -> String {
    let cfg = Config::new();
    let decls = [
        StatusView::decl(&cfg),
        AccountView::decl(&cfg),
        SessionView::decl(&cfg),
        ClientView::decl(&cfg),
        ClientAdded::decl(&cfg),
        ApprovalKind::decl(&cfg),
        ApprovalView::decl(&cfg),
        AuditRecordView::decl(&cfg),
        AuditVerified::decl(&cfg),
        AuditExported::decl(&cfg),
        ConsequencePreview::decl(&cfg),
        AllowanceView::decl(&cfg),
        AuthFailure::decl(&cfg),
        AuthFailureCount::decl(&cfg),
        ClientLimits::decl(&cfg),
        ClientLimitsUpdate::decl(&cfg),
        SettingsView::decl(&cfg),
        BrokerEvent::decl(&cfg),
        ErrorCode::decl(&cfg),
        AppErrorCode::decl(&cfg),
        UiErrorCode::decl(&cfg),
        UiError::decl(&cfg),
        AppInfo::decl(&cfg),
        PresetInfo::decl(&cfg),
        ScopeInfo::decl(&cfg),
        NewAccount::decl(&cfg),
        NewClient::decl(&cfg),
        ConnectPreview::decl(&cfg),
        ConnectDone::decl(&cfg),
        Snippets::decl(&cfg),
        ConnectionTest::decl(&cfg),
        AccountRemoved::decl(&cfg),
        AccountTested::decl(&cfg),
        ClientRevoked::decl(&cfg),
        ClientUpdated::decl(&cfg),
        SessionEnded::decl(&cfg),
        PauseState::decl(&cfg),
        KeysRotated::decl(&cfg),
        ApprovalDecided::decl(&cfg),
        AllowanceRevoked::decl(&cfg),
        PolicyDecision::decl(&cfg),
        ClientMode::decl(&cfg),
    ];
    let mut out = String::from(
        "// Generated from the Rust types by `UPDATE_BINDINGS=1 cargo test -p keybridge-app bindings`; do not edit.\n\n",
    );
    for decl in decls {
        out.push_str("export ");
        out.push_str(decl.trim());
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[test]
fn ui_bindings_match_the_rust_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts");
    let fresh = render();
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale: run `UPDATE_BINDINGS=1 cargo test -p keybridge-app bindings` and commit it",
        path.display()
    );
}
