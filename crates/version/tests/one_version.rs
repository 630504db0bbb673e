//! Every place that states Keybridge's version states the same one: the workspace's, which the
//! binaries, the MCP `serverInfo` and the packages take.

use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_changelog_the_metainfo_and_the_window_name_the_workspace_version() {
    let version = keybridge_version::RELEASE;
    let changelog = read("CHANGELOG.md");
    let newest = changelog.lines().find(|l| l.starts_with("## ")).expect("CHANGELOG.md has a release heading");
    assert!(newest.starts_with(&format!("## {version} ")), "CHANGELOG.md's newest entry is `{newest}`, not {version}");

    let metainfo = read("packaging/linux/dev.keybridge.desktop.metainfo.xml");
    let release = metainfo.lines().find(|l| l.contains("<release ")).expect("the metainfo lists releases");
    assert!(release.contains(&format!("version=\"{version}\"")), "the metainfo's newest release is {release}");

    let ui: serde_json::Value = serde_json::from_str(&read("ui/package.json")).unwrap();
    assert_eq!(ui["version"], version, "ui/package.json");

    // The app's bundle takes the crate's version: tauri.conf.json must not state another.
    let tauri: serde_json::Value = serde_json::from_str(&read("src-tauri/tauri.conf.json")).unwrap();
    assert!(tauri.get("version").is_none(), "tauri.conf.json states a version of its own: {}", tauri["version"]);
}
