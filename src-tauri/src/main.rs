//! `keybridge-app`: the desktop app. All the work is in the library.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("KEYBRIDGE_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    keybridge_app::run(keybridge_app::LaunchOptions::from_args(std::env::args().skip(1)))
}
