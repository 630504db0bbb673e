//! MCP client configuration: where each client keeps its servers, the entry that launches
//! `keybridge-mcp`, and a merge of that entry into an existing file that never loses anything.
//!
//! [`merge`] plans the change without touching the disk: an invalid file is refused with the
//! line and column of the problem; other servers and settings survive in their order.
//! [`apply`] backs the old file up, then replaces it atomically. The entry holds no secret for
//! host-bound clients; a client key, when used, goes in `env` and nowhere else.
//!
//! This crate must never write a file it could not parse, and never write outside the path it
//! is given (and its backup beside it).

mod probe;
mod splice;

pub use probe::{Probe, ProbeError};

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// The MCP clients Keybridge knows how to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpClient {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    VsCode,
}

impl McpClient {
    pub fn name(self) -> &'static str {
        match self {
            McpClient::ClaudeDesktop => "Claude Desktop",
            McpClient::ClaudeCode => "Claude Code",
            McpClient::Cursor => "Cursor",
            McpClient::VsCode => "VS Code",
        }
    }

    /// The key that holds servers in this client's file.
    fn servers_key(self) -> &'static str {
        match self {
            McpClient::VsCode => "servers",
            _ => "mcpServers",
        }
    }
}

/// Why a config file was not changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error(
        "{path} is not valid JSON (line {line}, column {column}: {reason}); it was left untouched: fix it, or move it aside and try again"
    )]
    Invalid { path: String, line: usize, column: usize, reason: String },
    #[error("{path}: {what}; it was left untouched")]
    Shape { path: String, what: String },
    /// A client would read one of the two and Keybridge cannot tell which.
    #[error(
        "{path} names the key {key:?} twice in one object (line {line}, column {column}); it was left untouched: remove one of them and try again"
    )]
    DuplicateKey { path: String, key: String, line: usize, column: usize },
    #[error("cannot read or write {path}: {reason}")]
    Io { path: String, reason: String },
    /// The file changed between the plan (what the user saw) and the write.
    #[error("{path} changed since it was read (another program wrote it); nothing was written: look at it again")]
    Changed { path: String },
}

/// What launches the bridge for one client.
#[derive(Debug, Clone)]
pub struct Entry {
    pub server_name: String,
    pub bridge: PathBuf,
    pub client_id: String,
    /// Only for clients paired with a key.
    pub client_key: Option<String>,
}

impl Entry {
    fn json(&self, client: McpClient) -> Value {
        let mut entry = Map::new();
        if client == McpClient::VsCode {
            entry.insert("type".into(), json!("stdio"));
        }
        entry.insert("command".into(), json!(self.bridge.display().to_string()));
        entry.insert("args".into(), json!(["--client", self.client_id]));
        if let Some(key) = &self.client_key {
            entry.insert("env".into(), json!({"KEYBRIDGE_CLIENT_KEY": key}));
        }
        Value::Object(entry)
    }

    /// The snippet or command a user pastes by hand.
    pub fn snippet(&self, client: McpClient) -> String {
        match client {
            McpClient::ClaudeCode => {
                let env = self.client_key.as_ref().map(|k| format!("-e KEYBRIDGE_CLIENT_KEY={k} ")).unwrap_or_default();
                format!(
                    "claude mcp add --transport stdio --scope user {env}{} -- {} --client {}",
                    self.server_name,
                    shell_quote(&self.bridge.display().to_string()),
                    self.client_id
                )
            }
            other => {
                let mut servers = Map::new();
                servers.insert(self.server_name.clone(), self.json(other));
                let mut root = Map::new();
                root.insert(other.servers_key().into(), Value::Object(servers));
                serde_json::to_string_pretty(&Value::Object(root)).unwrap_or_default()
            }
        }
    }
}

fn shell_quote(text: &str) -> String {
    if text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// What a merge would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The file does not exist yet, or has no entry of that name.
    Added,
    /// An entry of that name existed with other contents.
    Replaced { previous: String },
    /// The entry is already exactly right.
    Unchanged,
}

/// A planned change: the new file text and what it changes.
#[derive(Debug, Clone)]
pub struct Plan {
    pub path: PathBuf,
    pub change: Change,
    pub new_text: String,
    /// The entry as it will read in the file.
    pub entry_text: String,
    /// The other servers in the file, which stay as they are.
    pub other_servers: Vec<String>,
    /// SHA-256 of the file as read (`None`: there was none); the write is refused if it changed.
    pub original_digest: Option<String>,
}

fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The digest a [`Plan`] records for the file at `path` as it is now.
pub fn current_digest(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(digest(&bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::Io { path: path.display().to_string(), reason: e.to_string() }),
    }
}

/// Plan the merge of `entry` into the config at `path` (which may not exist yet).
pub fn merge(client: McpClient, path: &Path, entry: &Entry) -> Result<Plan, ConfigError> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(ConfigError::Io { path: path.display().to_string(), reason: e.to_string() }),
    };
    merge_text(client, path, existing, entry)
}

/// [`merge`] on a config's text (`None`: no file yet), `path` only naming it.
pub fn merge_text(
    client: McpClient,
    path: &Path,
    existing: Option<String>,
    entry: &Entry,
) -> Result<Plan, ConfigError> {
    let shown = path.display().to_string();
    // What is parsed is exactly what is spliced later: past a byte-order mark, only JSON's own
    // white space counts as blank (a form feed before `{` is an invalid file, not an empty one).
    let body = existing.as_deref().map(|text| text.strip_prefix('\u{feff}').unwrap_or(text));
    let mut root = match body {
        None => Map::new(),
        Some(text) if is_blank_json(text) => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(ConfigError::Shape { path: shown, what: "the top level is not a JSON object".into() }),
            Err(e) => {
                return Err(ConfigError::Invalid {
                    path: shown,
                    line: e.line(),
                    column: e.column(),
                    reason: e.to_string(),
                });
            }
        },
    };
    let key = client.servers_key();
    let servers = root.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(servers) = servers else {
        return Err(ConfigError::Shape { path: shown, what: format!("`{key}` is not an object") });
    };
    let new_entry = entry.json(client);
    let entry_text = serde_json::to_string_pretty(&new_entry).unwrap_or_default();
    let change = match servers.get(&entry.server_name) {
        Some(old) if *old == new_entry => Change::Unchanged,
        Some(old) => Change::Replaced { previous: serde_json::to_string_pretty(old).unwrap_or_default() },
        None => Change::Added,
    };
    let other_servers = servers.keys().filter(|name| **name != entry.server_name).cloned().collect();
    servers.insert(entry.server_name.clone(), new_entry.clone());
    let new_text = match existing.as_deref().filter(|_| !body.is_some_and(is_blank_json)) {
        // Only Keybridge's entry changes; every other byte of the file stays as it was.
        Some(text) => {
            let top = splice::root(text).map_err(|d| ConfigError::DuplicateKey {
                path: shown.clone(),
                key: d.key,
                line: d.line,
                column: d.column,
            })?;
            match splice::member_object(text, &top, key) {
                Some(servers) => splice::set_member(text, &servers, &entry.server_name, &entry_text),
                None => {
                    let servers = serde_json::to_string_pretty(&json!({ entry.server_name.clone(): new_entry }))
                        .unwrap_or_default();
                    splice::set_member(text, &top, key, &servers)
                }
            }
        }
        None => {
            let mut fresh = serde_json::to_string_pretty(&Value::Object(root)).unwrap_or_default();
            fresh.push('\n');
            fresh
        }
    };
    Ok(Plan {
        path: path.to_path_buf(),
        change,
        new_text,
        entry_text,
        other_servers,
        original_digest: existing.as_deref().map(|text| digest(text.as_bytes())),
    })
}

/// Nothing but JSON's white space (space, tab, line feed, carriage return).
fn is_blank_json(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Write a plan: back the old file up beside it, then replace it atomically. Returns the
/// backup's path (`None` when there was no file, or nothing changes). A config that is a
/// symbolic link (dotfiles) is written through the link; new files are private (0600) until
/// they take the old file's permissions.
pub fn apply(plan: &Plan) -> Result<Option<PathBuf>, ConfigError> {
    let io =
        |path: &Path, e: std::io::Error| ConfigError::Io { path: path.display().to_string(), reason: e.to_string() };
    if plan.change == Change::Unchanged {
        return Ok(None);
    }
    let target = link_target(&plan.path);
    let unchanged = |target: &Path| -> Result<(), ConfigError> {
        if current_digest(target)? != plan.original_digest {
            return Err(ConfigError::Changed { path: plan.path.display().to_string() });
        }
        Ok(())
    };
    unchanged(&target)?;
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let file_name = target.file_name().and_then(|n| n.to_str()).unwrap_or("config").to_string();
    let (tmp, mut file) =
        create_new_private(dir, &format!(".{file_name}.keybridge-tmp")).map_err(|(path, e)| io(&path, e))?;
    let mut backup = None;
    let written = write_synced(&mut file, plan.new_text.as_bytes())
        .and_then(|()| match std::fs::metadata(&target) {
            Ok(meta) => std::fs::set_permissions(&tmp, meta.permissions()),
            Err(_) => Ok(()),
        })
        .map_err(|e| io(&tmp, e))
        // The last look before the swap: another program may have written meanwhile. A write
        // refused here leaves nothing behind, not even a backup.
        .and_then(|()| unchanged(&target))
        .and_then(|()| {
            backup = back_up(&target, dir, &file_name)?;
            std::fs::rename(&tmp, &target).map_err(|e| io(&target, e))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return written.map(|()| None);
    }
    prune_backups(dir, &file_name);
    Ok(backup)
}

/// Backups kept beside a config: the newest few, so repeated connects do not fill the folder.
pub const KEPT_BACKUPS: usize = 3;

fn backup_prefix(file_name: &str) -> String {
    format!("{file_name}.keybridge-backup-")
}

/// A private copy of the file as it is now, beside it; `None` when there is no file.
fn back_up(target: &Path, dir: &Path, file_name: &str) -> Result<Option<PathBuf>, ConfigError> {
    let io =
        |path: &Path, e: std::io::Error| ConfigError::Io { path: path.display().to_string(), reason: e.to_string() };
    match std::fs::read(target) {
        Ok(old) => {
            let stamp =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let (path, mut file) = create_new_private(dir, &format!("{}{stamp}", backup_prefix(file_name)))
                .map_err(|(path, e)| io(&path, e))?;
            write_synced(&mut file, &old).map_err(|e| io(&path, e))?;
            Ok(Some(path))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(target, e)),
    }
}

/// Remove all but the newest [`KEPT_BACKUPS`] backups of `file_name` (best effort).
fn prune_backups(dir: &Path, file_name: &str) {
    let prefix = backup_prefix(file_name);
    let mut backups: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    backups.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    for (_, old) in backups.into_iter().skip(KEPT_BACKUPS) {
        let _ = std::fs::remove_file(old);
    }
}

/// Where a write to `path` should go: through a symbolic link (dotfiles) to the file it names,
/// even when that file does not exist yet, so the link stays a link.
fn link_target(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&current) {
            Ok(next) if next.is_absolute() => current = next,
            Ok(next) => current = current.parent().unwrap_or(Path::new(".")).join(next),
            Err(_) => break,
        }
    }
    std::fs::canonicalize(&current).unwrap_or(current)
}

/// A new file `name` (or `name-1`, `name-2`, …) in `dir`, readable by its owner only. Never
/// opens an existing file or follows a link planted at that name.
fn create_new_private(dir: &Path, name: &str) -> Result<(PathBuf, std::fs::File), (PathBuf, std::io::Error)> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    for n in 0..100 {
        let path = if n == 0 { dir.join(name) } else { dir.join(format!("{name}-{n}")) };
        match options.open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err((path, e)),
        }
    }
    let path = dir.join(name);
    Err((path, std::io::Error::new(std::io::ErrorKind::AlreadyExists, "100 files of that name exist already")))
}

fn write_synced(file: &mut std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Folders the platform's config paths are built from; taken from the environment by
/// [`Homes::from_env`], passed explicitly in tests.
#[derive(Debug, Clone, Default)]
pub struct Homes {
    pub home: Option<PathBuf>,
    pub appdata: Option<PathBuf>,
    pub local_appdata: Option<PathBuf>,
    pub xdg_config: Option<PathBuf>,
}

impl Homes {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Self {
            home: var("HOME").or_else(|| var("USERPROFILE")),
            appdata: var("APPDATA"),
            local_appdata: var("LOCALAPPDATA"),
            xdg_config: var("XDG_CONFIG_HOME"),
        }
    }
}

/// This platform, as [`claude_desktop_candidates`] names it.
pub fn this_os() -> &'static str {
    if cfg!(target_os = "macos") {
        "macos"
    } else if cfg!(windows) {
        "windows"
    } else {
        "linux"
    }
}

/// The Claude Desktop config of this user: `KEYBRIDGE_CLAUDE_DESKTOP_CONFIG` when set (a
/// non-standard install), else where Claude Desktop keeps it on this platform.
pub fn claude_desktop_config_here() -> Option<PathBuf> {
    match std::env::var_os("KEYBRIDGE_CLAUDE_DESKTOP_CONFIG").filter(|p| !p.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None => claude_desktop_config(this_os(), &Homes::from_env()),
    }
}

/// Claude Desktop's config files, most likely first, for an OS (`linux`, `macos`, `windows`).
/// On Windows the MSIX build (the default installer since early 2026) reads a file under its
/// package folder, not `%APPDATA%`.
pub fn claude_desktop_candidates(os: &str, homes: &Homes) -> Vec<PathBuf> {
    const FILE: &str = "claude_desktop_config.json";
    let mut out = Vec::new();
    match os {
        "macos" => out.extend(homes.home.as_ref().map(|h| h.join("Library/Application Support/Claude").join(FILE))),
        "windows" => {
            out.extend(homes.local_appdata.as_ref().map(|l| {
                l.join("Packages")
                    .join("Claude_pzs8sxrjxfjjc")
                    .join("LocalCache")
                    .join("Roaming")
                    .join("Claude")
                    .join(FILE)
            }));
            out.extend(homes.appdata.as_ref().map(|a| a.join("Claude").join(FILE)));
        }
        _ => {
            let config = homes.xdg_config.clone().or_else(|| homes.home.as_ref().map(|h| h.join(".config")));
            out.extend(config.map(|c| c.join("Claude").join(FILE)));
        }
    }
    out
}

/// The Claude Desktop config to edit: the first candidate whose folder exists (the app has
/// run), else the first candidate.
pub fn claude_desktop_config(os: &str, homes: &Homes) -> Option<PathBuf> {
    let candidates = claude_desktop_candidates(os, homes);
    candidates.iter().find(|p| p.parent().is_some_and(Path::exists)).cloned().or_else(|| candidates.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: Option<&str>) -> Entry {
        Entry {
            server_name: "quantconnect".into(),
            bridge: "/opt/keybridge/keybridge-mcp".into(),
            client_id: "claude-desktop-3fa2".into(),
            client_key: key.map(str::to_string),
        }
    }

    #[test]
    fn other_servers_and_settings_survive_in_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claude_desktop_config.json");
        let original = r#"{"globalShortcut": "Ctrl+Space", "mcpServers": {"zeta": {"command": "z"}, "alpha": {"command": "a", "args": ["-v"]}}, "theme": "dark"}"#;
        std::fs::write(&path, original).unwrap();
        let plan = merge(McpClient::ClaudeDesktop, &path, &entry(None)).unwrap();
        assert_eq!(plan.change, Change::Added);
        assert_eq!(plan.other_servers, ["zeta", "alpha"], "the plan says what stays");
        let backup = apply(&plan).unwrap().expect("a backup");
        assert_eq!(std::fs::read_to_string(backup).unwrap(), original, "the backup is the old file");
        let merged: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let keys: Vec<&String> = merged.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["globalShortcut", "mcpServers", "theme"]);
        let servers: Vec<&String> = merged["mcpServers"].as_object().unwrap().keys().collect();
        assert_eq!(servers, ["zeta", "alpha", "quantconnect"]);
        assert_eq!(merged["mcpServers"]["alpha"]["args"], json!(["-v"]));
        assert_eq!(merged["mcpServers"]["quantconnect"]["args"], json!(["--client", "claude-desktop-3fa2"]));
        assert!(merged["mcpServers"]["quantconnect"].get("env").is_none(), "host-bound: no secret at all");
        // Again: nothing to do.
        let again = merge(McpClient::ClaudeDesktop, &path, &entry(None)).unwrap();
        assert_eq!(again.change, Change::Unchanged);
        assert!(apply(&again).unwrap().is_none());
    }

    #[test]
    fn text_json_does_not_call_blank_is_refused_and_a_byte_order_mark_is_kept() {
        // Found by the config_merge fuzz target: a form feed before `{` passed as blank space.
        let path = Path::new("claude_desktop_config.json");
        for text in ["\u{c}{}", "\u{a0}{}", "{}\u{2028}"] {
            let refused = merge_text(McpClient::ClaudeDesktop, path, Some(text.into()), &entry(None));
            assert!(matches!(refused, Err(ConfigError::Invalid { .. })), "{text:?}: {refused:?}");
        }
        let plan = merge_text(McpClient::ClaudeDesktop, path, Some("\u{feff}{\"a\": 1}".into()), &entry(None)).unwrap();
        assert!(plan.new_text.starts_with("\u{feff}{\"a\": 1, \"mcpServers\""), "{:?}", plan.new_text);
        let blank = merge_text(McpClient::ClaudeDesktop, path, Some(" \n".into()), &entry(None)).unwrap();
        assert!(serde_json::from_str::<Value>(&blank.new_text).is_ok());
    }

    #[test]
    fn an_invalid_file_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claude_desktop_config.json");
        let broken = "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\",}\n  }\n";
        std::fs::write(&path, broken).unwrap();
        let err = merge(McpClient::ClaudeDesktop, &path, &entry(None)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 3") && text.contains("left untouched"), "{text}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
        std::fs::write(&path, "[1, 2]").unwrap();
        assert!(
            merge(McpClient::ClaudeDesktop, &path, &entry(None)).unwrap_err().to_string().contains("not a JSON object")
        );
        std::fs::write(&path, r#"{"mcpServers": []}"#).unwrap();
        assert!(
            merge(McpClient::ClaudeDesktop, &path, &entry(None))
                .unwrap_err()
                .to_string()
                .contains("`mcpServers` is not an object")
        );
    }

    #[test]
    fn a_missing_file_is_created_and_a_changed_entry_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Claude").join("claude_desktop_config.json");
        let plan = merge(McpClient::ClaudeDesktop, &path, &entry(None)).unwrap();
        assert_eq!(plan.change, Change::Added);
        assert!(apply(&plan).unwrap().is_none(), "no backup of a file that did not exist");
        let plan = merge(McpClient::ClaudeDesktop, &path, &entry(Some("k3y"))).unwrap();
        assert!(matches!(plan.change, Change::Replaced { .. }));
        apply(&plan).unwrap();
        let merged: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(merged["mcpServers"]["quantconnect"]["env"]["KEYBRIDGE_CLIENT_KEY"], "k3y");
    }

    #[test]
    fn each_client_gets_its_own_shape() {
        let e = entry(None);
        assert!(
            e.snippet(McpClient::VsCode).contains("\"servers\"") && e.snippet(McpClient::VsCode).contains("\"stdio\"")
        );
        assert!(e.snippet(McpClient::Cursor).contains("\"mcpServers\""));
        assert_eq!(
            e.snippet(McpClient::ClaudeCode),
            "claude mcp add --transport stdio --scope user quantconnect -- /opt/keybridge/keybridge-mcp --client claude-desktop-3fa2"
        );
    }

    #[test]
    fn claude_desktop_lives_where_each_platform_keeps_it() {
        let homes = Homes {
            home: Some("/home/t".into()),
            appdata: Some("C:/Users/t/AppData/Roaming".into()),
            local_appdata: Some("C:/Users/t/AppData/Local".into()),
            xdg_config: None,
        };
        assert_eq!(
            claude_desktop_candidates("linux", &homes),
            [PathBuf::from("/home/t/.config/Claude/claude_desktop_config.json")]
        );
        assert_eq!(
            claude_desktop_candidates("macos", &homes),
            [PathBuf::from("/home/t/Library/Application Support/Claude/claude_desktop_config.json")]
        );
        let windows = claude_desktop_candidates("windows", &homes);
        assert!(windows[0].to_string_lossy().contains("Claude_pzs8sxrjxfjjc"), "the MSIX path comes first");
        assert!(windows[1].to_string_lossy().ends_with("Roaming/Claude/claude_desktop_config.json"));
    }

    #[test]
    fn a_file_changed_after_the_plan_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claude_desktop_config.json");
        std::fs::write(&path, r#"{"mcpServers": {}}"#).unwrap();
        let plan = merge(McpClient::ClaudeDesktop, &path, &entry(None)).unwrap();
        let meanwhile = r#"{"mcpServers": {"added-by-claude": {"command": "x"}}}"#;
        std::fs::write(&path, meanwhile).unwrap();
        let err = apply(&plan).unwrap_err();
        assert!(matches!(err, ConfigError::Changed { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), meanwhile);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers.len(), 1, "no backup or temporary file left behind: {leftovers:?}");
    }

    #[test]
    fn numbers_and_text_survive_exactly_and_a_key_named_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claude_desktop_config.json");
        let original = "{\n  \"big\": 12345678901234567890123,\n  \"zero\": -0,\n  \"name\": \"caf\\u00e9\",\n  \"mcpServers\": {\n    \"a\": {\"command\": \"a\"}\n  }\n}\n";
        std::fs::write(&path, original).unwrap();
        apply(&merge(McpClient::ClaudeDesktop, &path, &entry(None)).unwrap()).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        for exact in ["12345678901234567890123", "\"zero\": -0,", "caf\\u00e9", "\"a\": {\"command\": \"a\"}"] {
            assert!(written.contains(exact), "{exact} changed:\n{written}");
        }
        let merged: Value = serde_json::from_str(&written).unwrap();
        assert_eq!(merged["mcpServers"]["quantconnect"]["args"][1], "claude-desktop-3fa2");

        let twice = "{\n  \"mcpServers\": {\"a\": {\"command\": \"one\"},\n    \"a\": {\"command\": \"two\"}}\n}\n";
        std::fs::write(&path, twice).unwrap();
        let err = merge(McpClient::ClaudeDesktop, &path, &entry(None)).unwrap_err().to_string();
        assert!(err.contains("\"a\" twice") && err.contains("line 3"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), twice);
    }

    #[test]
    fn only_the_newest_backups_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claude_desktop_config.json");
        std::fs::write(&path, "{}").unwrap();
        for n in 0..6 {
            let mut e = entry(None);
            e.client_id = format!("client-{n}");
            apply(&merge(McpClient::ClaudeDesktop, &path, &e).unwrap()).unwrap();
        }
        let backups = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("keybridge-backup"))
            .count();
        assert_eq!(backups, KEPT_BACKUPS);
    }

    #[cfg(unix)]
    #[test]
    fn a_dangling_link_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles/claude.json");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        let link = dir.path().join("claude_desktop_config.json");
        std::os::unix::fs::symlink("dotfiles/claude.json", &link).unwrap();
        apply(&merge(McpClient::ClaudeDesktop, &link, &entry(None)).unwrap()).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
        let merged: Value = serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
        assert!(merged["mcpServers"]["quantconnect"].is_object());
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_config_is_written_through_the_link_and_backups_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles/claude.json");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, r#"{"mcpServers": {"a": {"command": "a", "env": {"API_KEY": "other-servers-secret"}}}}"#)
            .unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("claude_desktop_config.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();

        let first = apply(&merge(McpClient::ClaudeDesktop, &link, &entry(None)).unwrap()).unwrap().unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
        let merged: Value = serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
        assert!(merged["mcpServers"]["quantconnect"].is_object());
        assert_eq!(std::fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640, "permissions kept");
        assert_eq!(std::fs::metadata(&first).unwrap().permissions().mode() & 0o777, 0o600, "the backup is private");

        let mut other = entry(None);
        other.client_id = "another-1a2b".into();
        let second = apply(&merge(McpClient::ClaudeDesktop, &link, &other).unwrap()).unwrap().unwrap();
        assert_ne!(first, second, "a second backup in the same second gets its own name");
        assert!(std::fs::read_to_string(&first).unwrap().contains("other-servers-secret"));
    }
}
