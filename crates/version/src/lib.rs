//! Keybridge's version, the one every part reports: the app's About, `keybridge --version`,
//! `keybridge-mcp --version`, the MCP `serverInfo`, the broker's status and the packages.
//!
//! A release build says the workspace version alone (`0.1.0`); a development build adds the
//! commit it was built from (`0.1.0-dev+1a2b3c4d5e6f`), so a bug report names the exact source.
//! This crate must never depend on another: it is a leaf, so a new commit rebuilds only what
//! shows the version.

/// The version of this build.
pub const VERSION: &str = env!("KEYBRIDGE_VERSION");

/// The workspace version alone, as the packages carry it.
pub const RELEASE: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_names_the_workspace_version_first() {
        assert!(VERSION.starts_with(RELEASE), "{VERSION}");
        let rest = &VERSION[RELEASE.len()..];
        if cfg!(debug_assertions) {
            assert!(rest.starts_with("-dev"), "a development build says so: {VERSION}");
        } else {
            assert_eq!(rest, "", "a release build is the bare version: {VERSION}");
        }
    }
}
