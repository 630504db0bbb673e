//! What the operating system says about the process at the other end of the socket.
//!
//! Naming the host is advisory against code running as the same user, which can do what the
//! user can (see the README's scope); it is built to fail closed: where anything in the walk is
//! not understood, there is no host, and the bridge needs a client key.

use std::path::{Path, PathBuf};

/// The program that started the bridge, as the human knows it: a native program (Claude
/// Desktop, Cursor), or an interpreter running a script (Claude Code from npm is `node` running
/// its `cli.js`; a Python agent is `python3` running its script). Each is approved on its own:
/// a different script under the same interpreter is another host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The executable, resolved by the OS.
    pub program: PathBuf,
    /// The script the interpreter runs, resolved to a full path (or `-m module in FOLDER`).
    pub script: Option<String>,
}

impl Host {
    /// What an approved pairing remembers: a native program's path, or for a script host the
    /// JSON array `[program, script]`, which no program path can be mistaken for.
    pub fn key(&self) -> String {
        let program = self.program.display().to_string();
        match &self.script {
            None => program,
            Some(script) => serde_json::json!([program, script]).to_string(),
        }
    }

    /// The host in plain words, full paths included: "Claude Code: /usr/bin/node running
    /// /usr/lib/node_modules/@anthropic-ai/claude-code/cli.js".
    pub fn describe(&self) -> String {
        describe_host(&self.key())
    }
}

/// A remembered host (a [`Host::key`]) in plain words, with the name the trader knows it by
/// where its installed path says so. The full paths are always shown: a name alone could be
/// borrowed by any file put in a folder of that name.
pub fn describe_host(key: &str) -> String {
    let plain = match serde_json::from_str::<[String; 2]>(key) {
        Ok([program, script]) => format!("{program} running {script}"),
        Err(_) => key.to_string(),
    };
    match known_host_name(key) {
        Some(name) => format!("{name}: {plain}"),
        None => plain,
    }
}

/// The MCP hosts traders use, recognized by where their installers put them.
pub fn known_host_name(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase().replace("\\\\", "/").replace('\\', "/");
    let (program, script) = match serde_json::from_str::<[String; 2]>(&lower) {
        Ok([program, script]) => (program, Some(script)),
        Err(_) => (lower.clone(), None),
    };
    let file = program.rsplit('/').next().unwrap_or_default().trim_end_matches(".exe");
    if let Some(script) = script {
        return script.contains("/node_modules/@anthropic-ai/claude-code/").then_some("Claude Code");
    }
    if program.contains("/.local/share/claude/versions/") || program.contains("/.claude/local/") {
        Some("Claude Code")
    } else if file == "claude-desktop" || program.contains("/claude.app/") || program.contains("/anthropicclaude/") {
        Some("Claude Desktop")
    } else if file == "cursor" {
        Some("Cursor")
    } else if matches!(file, "code" | "code-insiders" | "codium") {
        Some("VS Code")
    } else if file == "windsurf" {
        Some("Windsurf")
    } else {
        None
    }
}

/// The peer of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
    /// The peer's executable, resolved by the OS (not what the peer claims).
    pub exe: Option<PathBuf>,
    /// The program that launched the peer, past shells and launchers.
    pub host: Option<Host>,
    /// This very process started the peer: the app running a client's bridge for its
    /// connection test. Nothing else can make the broker its parent.
    pub launched_by_broker: bool,
}

/// Script interpreters: one running a script it is known to run is the host, with its script;
/// one running anything else (`python3 -c …`, a prompt, an option not understood) ends the walk
/// with no host, since any program could be behind it.
const INTERPRETERS: &[&str] = &["node", "nodejs", "python", "python3", "pythonw", "bun", "deno"];

/// Launchers that stand between an MCP host and the bridge, and so are walked past: shells,
/// package runners, and macOS's `disclaimer` wrapper. Names are compared in lower case, without
/// `.exe`; a package runner that is itself a script (`npx` is node running `npx-cli.js`) is
/// matched by its script's name.
const PASS_THROUGH: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "fish",
    "ksh",
    "env",
    "npm",
    "npx",
    "npm-cli",
    "npx-cli",
    "corepack",
    "uv",
    "uvx",
    "pipx",
    "py",
    "disclaimer",
    "login",
    "sudo",
    "su",
    "nohup",
    "cmd",
    "powershell",
    "pwsh",
];

/// Where a walk up the process tree ends without naming an MCP host: terminals, multiplexers,
/// remote shells, desktop shells, schedulers and service managers. A bridge started under one
/// of these could have been started by anything the user runs there. (An interactive shell ends
/// the walk too, wherever it runs: a terminal inside an editor is still a terminal.)
const SESSION_ROOTS: &[&str] = &[
    "tmux",
    "tmux: server",
    "screen",
    "sshd",
    "systemd",
    "init",
    "cron",
    "crond",
    "atd",
    "dbus-daemon",
    "gnome-shell",
    "gnome-terminal-server",
    "kwin_x11",
    "kwin_wayland",
    "plasmashell",
    "konsole",
    "xterm",
    "alacritty",
    "kitty",
    "wezterm-gui",
    "foot",
    "terminator",
    "tilix",
    "xfce4-terminal",
    "lxterminal",
    "terminal",
    "iterm2",
    "launchd",
    "windowsterminal",
    "openconsole",
    "conhost",
    "explorer",
    "services",
    "svchost",
    "taskhostw",
    "sihost",
    "wininit",
    "winlogon",
];

/// A program's name as the lists above spell it: lower case, without `.exe`.
fn program_name(exe: &Path) -> String {
    // Split by hand: a Windows path must read the same wherever its name is checked.
    let path = exe.to_string_lossy().to_lowercase();
    let name = path.rsplit(['/', '\\']).next().unwrap_or_default();
    name.strip_suffix(".exe").unwrap_or(name).to_string()
}

fn is_interpreter(exe: &Path) -> bool {
    let name = program_name(exe);
    // Versioned interpreters: python3.11, node20.
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    INTERPRETERS.contains(&name.as_str()) || INTERPRETERS.contains(&base)
}

fn is_session_root(exe: &Path) -> bool {
    SESSION_ROOTS.contains(&program_name(exe).as_str())
}

fn passes_through(exe: &Path) -> bool {
    PASS_THROUGH.contains(&program_name(exe).as_str())
}

/// A script that is itself a launcher (`…/npm/bin/npx-cli.js`).
fn script_passes_through(script: &str) -> bool {
    let name = program_name(Path::new(script));
    let stem = name.rsplit_once('.').map_or(name.as_str(), |(stem, _)| stem);
    PASS_THROUGH.contains(&stem)
}

/// What the OS says about other processes: enough to walk from a peer up to its host.
trait ProcessTable {
    /// The process that started `pid` and the program it runs, if it still runs (not a later
    /// process that took its id).
    fn parent(&self, pid: u32) -> Option<(u32, PathBuf)>;
    /// The script an interpreter process runs, where the OS shows its arguments and they are
    /// understood; `None` otherwise.
    fn script(&self, pid: u32) -> Option<String>;
    /// Whether the process reads from a terminal: a shell someone types into.
    fn interactive(&self, pid: u32) -> bool;
}

/// The same rules on every OS: past shells and launchers, up to the first program that is
/// neither (a native host), or an interpreter running a script it is known to run (a script
/// host); nothing when the walk reaches a terminal, an interactive shell, a desktop shell, a
/// service manager or an interpreter running something else first.
fn walk_to_host(table: &impl ProcessTable, pid: u32) -> Option<Host> {
    let (mut current, mut exe) = table.parent(pid)?;
    for _ in 0..16 {
        if current <= 1 || is_session_root(&exe) {
            return None;
        }
        if is_interpreter(&exe) {
            let script = table.script(current)?;
            if !script_passes_through(&script) {
                return Some(Host { program: exe, script: Some(script) });
            }
        } else if !passes_through(&exe) {
            return Some(Host { program: exe, script: None });
        } else if table.interactive(current) {
            return None;
        }
        (current, exe) = table.parent(current)?;
    }
    None
}

/// The script an interpreter runs, from its arguments (`argv[0]` first): the first argument
/// after options known to change nothing about what runs, or Python's `-m module`, or the script
/// after `deno run` / `bun run`. `None` for code given inline, options that load other code or
/// that are not understood.
#[cfg(any(target_os = "linux", test))]
fn script_argument(args: &[String]) -> Option<String> {
    // Options that take the next argument as their value and load no code.
    const WITH_VALUE: &[&str] = &["-W", "-X", "--title"];
    // Options that change nothing about which code runs.
    const HARMLESS: &[&str] = &[
        "-u",
        "-B",
        "-E",
        "-s",
        "-S",
        "-I",
        "-O",
        "-OO",
        "-q",
        "-b",
        "-bb",
        "--enable-source-maps",
        "--no-warnings",
        "--no-deprecation",
        "--trace-warnings",
        "--trace-uncaught",
        "--no-addons",
    ];
    // `--name=value` forms that are fine, by name.
    const HARMLESS_VALUED: &[&str] = &["--max-old-space-size", "--stack-size", "--title", "--unhandled-rejections"];
    let program = program_name(Path::new(args.first()?));
    let runs_subcommand = program.starts_with("deno") || program.starts_with("bun");
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-m" => return rest.next().map(|module| format!("-m {module}")),
            "--" => return rest.next().cloned(),
            "run" if runs_subcommand => return rest.find(|a| !a.starts_with('-')).cloned(),
            a if WITH_VALUE.contains(&a) => {
                rest.next()?;
            }
            a if HARMLESS.contains(&a) => {}
            a if a.starts_with("--") && a.contains('=') => {
                let name = a.split('=').next().unwrap_or_default();
                if !HARMLESS_VALUED.contains(&name) {
                    return None;
                }
            }
            a if a.starts_with('-') => return None,
            script => return Some(script.to_string()),
        }
    }
    None
}

impl Peer {
    /// The SHA-256 of the program the peer runs, read from the running process itself (so a
    /// file swapped after it started does not count); `None` where the OS does not say.
    pub fn program_digest(&self) -> Option<[u8; 32]> {
        use sha2::Digest;
        let pid = u32::try_from(self.pid?).ok()?;
        let program = std::fs::read(program_file(pid)?).ok()?;
        Some(sha2::Sha256::digest(&program).into())
    }

    /// Describe the peer with process id `pid` (when the OS gave one) and user id `uid`.
    pub fn inspect(uid: u32, pid: Option<i32>) -> Self {
        let os_pid = pid.and_then(|pid| u32::try_from(pid).ok());
        let exe = os_pid.and_then(program_of);
        let host = os_pid.and_then(|pid| walk_to_host(&Os, pid));
        let launched_by_broker =
            os_pid.and_then(|pid| Os.parent(pid)).map(|(parent, _)| parent) == Some(std::process::id());
        Self { uid, pid, exe, host, launched_by_broker }
    }
}

/// The OS's own process table.
struct Os;

/// The program a process runs; `None` for one whose file was replaced or removed since it
/// started (Linux says `… (deleted)`): its name can no longer be trusted to mean anything.
#[cfg(target_os = "linux")]
fn program_of(pid: u32) -> Option<PathBuf> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let text = exe.to_str()?;
    (!text.ends_with(" (deleted)")).then_some(exe)
}

#[cfg(target_os = "linux")]
impl ProcessTable for Os {
    fn parent(&self, pid: u32) -> Option<(u32, PathBuf)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may contain spaces and parentheses: fields start after the last ')'.
        let after = stat.get(stat.rfind(')')? + 1..)?;
        let parent: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
        Some((parent, program_of(parent)?))
    }

    /// The script, resolved against the process's working folder and through links; `None`
    /// when it cannot be resolved or its arguments are not UTF-8.
    fn script(&self, pid: u32) -> Option<String> {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8(a.to_vec()).ok())
            .collect::<Option<_>>()?;
        let script = script_argument(&args)?;
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
        if let Some(module) = script.strip_prefix("-m ") {
            // What `-m` runs depends on the folder it starts in.
            return Some(format!("-m {module} in {}", cwd.to_str()?));
        }
        let resolved = std::fs::canonicalize(cwd.join(&script)).ok()?;
        Some(resolved.to_str()?.to_string())
    }

    fn interactive(&self, pid: u32) -> bool {
        std::fs::read_link(format!("/proc/{pid}/fd/0"))
            .is_ok_and(|input| input.starts_with("/dev/pts") || input.starts_with("/dev/tty"))
    }
}

/// Windows (tested under Wine) and macOS (untested: it cannot be built or run here) through the
/// endpoint crate, which alone may call the OS unsafely.
#[cfg(any(windows, target_os = "macos"))]
fn program_of(pid: u32) -> Option<PathBuf> {
    keybridge_endpoint::process::image_of(pid)
}

#[cfg(any(windows, target_os = "macos"))]
impl ProcessTable for Os {
    fn parent(&self, pid: u32) -> Option<(u32, PathBuf)> {
        use keybridge_endpoint::process::{parent_of, started_at};
        let parent = parent_of(pid)?;
        // Both keep an exited parent's id and may give it to a new process: one that started
        // after its child is not its parent. The program and the start time come from one
        // look at the process, so the id cannot change hands between the two.
        let (image, started) = keybridge_endpoint::process::image_and_start(parent)?;
        (started <= started_at(pid)?).then_some((parent, image))
    }

    /// Another process's arguments live in its own memory (Windows) or behind `KERN_PROCARGS2`
    /// (macOS) and are not read: an interpreter ends the walk with no host there.
    fn script(&self, _pid: u32) -> Option<String> {
        None
    }

    fn interactive(&self, _pid: u32) -> bool {
        false
    }
}

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
fn program_of(_pid: u32) -> Option<PathBuf> {
    None
}

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
impl ProcessTable for Os {
    fn parent(&self, _pid: u32) -> Option<(u32, PathBuf)> {
        None
    }

    fn script(&self, _pid: u32) -> Option<String> {
        None
    }

    fn interactive(&self, _pid: u32) -> bool {
        false
    }
}

/// The file of the program process `pid` runs: on Linux the running image itself.
#[cfg(target_os = "linux")]
fn program_file(pid: u32) -> Option<PathBuf> {
    Some(PathBuf::from(format!("/proc/{pid}/exe")))
}

/// The file of the program process `pid` runs: on Windows and macOS the file it was started from.
#[cfg(not(target_os = "linux"))]
fn program_file(pid: u32) -> Option<PathBuf> {
    program_of(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells_are_walked_past_and_interpreters_are_recognized() {
        for name in ["/bin/sh", "/usr/bin/bash", "/usr/bin/env", "/usr/bin/npx", "/usr/libexec/disclaimer"] {
            assert!(passes_through(std::path::Path::new(name)), "{name}");
        }
        for name in ["/usr/bin/python3.11", "/usr/bin/node", "/opt/node22/bin/node", "C:/Python312/python.exe"] {
            assert!(is_interpreter(Path::new(name)) && !passes_through(Path::new(name)), "{name}");
        }
        assert!(!passes_through(std::path::Path::new("/opt/Claude/claude-desktop")));
        assert!(is_session_root(std::path::Path::new("/usr/bin/tmux")));
        assert!(is_session_root(std::path::Path::new("/usr/lib/systemd/systemd")));
    }

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn the_script_an_interpreter_runs_is_found_only_past_options_known_to_change_nothing() {
        let cases = [
            (
                "node /usr/lib/node_modules/@anthropic-ai/claude-code/cli.js --resume",
                Some("/usr/lib/node_modules/@anthropic-ai/claude-code/cli.js"),
            ),
            ("node --max-old-space-size=4096 --enable-source-maps agent.mjs", Some("agent.mjs")),
            ("python3 -u -X utf8 agent.py --model x", Some("agent.py")),
            ("python3 -m my_agent.main", Some("-m my_agent.main")),
            ("deno run --allow-net agent.ts", Some("agent.ts")),
            // Inline code, code loaded beside the script, and options not understood: no script.
            ("python3 -c print(1)", None),
            ("python3 -Ic print(1)", None),
            ("node -e 1", None),
            ("node -r ./hook.js agent.mjs", None),
            ("node --import=/tmp/evil.mjs cli.js", None),
            ("node -C /approved/cli.js evil.js", None),
            ("python3", None),
        ];
        for (line, script) in cases {
            assert_eq!(script_argument(&args(line)).as_deref(), script, "{line}");
        }
    }

    #[test]
    fn hosts_are_named_as_the_trader_knows_them_with_their_full_paths() {
        let code = Host {
            program: "/usr/bin/node".into(),
            script: Some("/home/t/.npm-global/lib/node_modules/@anthropic-ai/claude-code/cli.js".into()),
        };
        assert_eq!(
            code.describe(),
            "Claude Code: /usr/bin/node running /home/t/.npm-global/lib/node_modules/@anthropic-ai/claude-code/cli.js"
        );
        let desktop = Host { program: "/usr/lib/claude-desktop/claude-desktop".into(), script: None };
        assert_eq!(desktop.describe(), "Claude Desktop: /usr/lib/claude-desktop/claude-desktop");
        let windows =
            Host { program: r"C:\Users\t\AppData\Local\AnthropicClaude\app-1.2\claude.exe".into(), script: None };
        assert!(windows.describe().starts_with("Claude Desktop: C:"), "{}", windows.describe());
        let spaced = Host { program: r"C:\Program Files\Microsoft VS Code\Code.exe".into(), script: None };
        assert_eq!(spaced.describe(), r"VS Code: C:\Program Files\Microsoft VS Code\Code.exe");
        let agent = Host { program: "/usr/bin/python3.11".into(), script: Some("/srv/agents/trader/run.py".into()) };
        assert_eq!(agent.describe(), "/usr/bin/python3.11 running /srv/agents/trader/run.py");
        assert_ne!(agent.key(), Host { script: Some("/srv/agents/other/run.py".into()), ..agent.clone() }.key());
        // A program whose name looks like an interpreter and its script is still one program.
        let odd = Host { program: "/venv/bin/python3 -m agent.main".into(), script: None };
        let module = Host { program: "/venv/bin/python3".into(), script: Some("-m agent.main".into()) };
        assert_ne!(odd.key(), module.key());
        // A folder named like an installer's does not make a script Claude Code.
        assert_eq!(
            known_host_name(&Host { script: Some("/tmp/claude-code/evil.js".into()), ..agent.clone() }.key()),
            None
        );
        assert_eq!(known_host_name("/home/t/.local/bin/claude"), None);
        assert_eq!(known_host_name("/usr/share/code/code"), Some("VS Code"));
        assert_eq!(known_host_name("/opt/cursor/cursor"), Some("Cursor"));
    }

    /// A process table written down: (pid, parent, program, script, interactive).
    type Row = (u32, u32, &'static str, Option<&'static str>, bool);
    struct Table(Vec<Row>);

    impl Table {
        fn row(&self, pid: u32) -> Option<&Row> {
            self.0.iter().find(|p| p.0 == pid)
        }
    }

    impl ProcessTable for Table {
        fn parent(&self, pid: u32) -> Option<(u32, PathBuf)> {
            let parent = self.row(pid)?.1;
            Some((parent, PathBuf::from(self.row(parent)?.2)))
        }
        fn script(&self, pid: u32) -> Option<String> {
            self.row(pid)?.3.map(str::to_string)
        }
        fn interactive(&self, pid: u32) -> bool {
            self.row(pid).is_some_and(|p| p.4)
        }
    }

    #[test]
    fn the_walk_finds_the_host_on_every_os_by_the_same_rules_and_fails_closed() {
        let walk = |rows: &[Row], parent: u32| {
            let mut rows = rows.to_vec();
            rows.push((99, parent, "keybridge-mcp", None, false));
            walk_to_host(&Table(rows), 99).map(|h| h.key())
        };
        let desktop_windows = [
            (10, 4, r"C:\Windows\explorer.exe", None, false),
            (20, 10, r"C:\Users\t\AppData\Local\AnthropicClaude\app-1.0\claude.exe", None, false),
            (30, 20, r"C:\Windows\System32\cmd.exe", None, false),
        ];
        let claude = r"C:\Users\t\AppData\Local\AnthropicClaude\app-1.0\claude.exe";
        assert_eq!(walk(&desktop_windows, 30).as_deref(), Some(claude));
        let terminal_windows = [
            (10, 4, r"C:\Program Files\WindowsApps\WindowsTerminal.exe", None, false),
            (20, 10, r"C:\Program Files\PowerShell\7\pwsh.exe", None, false),
        ];
        assert_eq!(walk(&terminal_windows, 20), None, "a bare shell in a terminal is no host");
        // An interpreter whose script is not known is no host, nor lets its parent be one.
        let node_windows = [
            (10, 4, r"C:\Windows\explorer.exe", None, false),
            (15, 10, claude, None, false),
            (20, 15, r"C:\nodejs\node.exe", None, false),
        ];
        assert_eq!(walk(&node_windows, 20), None, "Claude Desktop's approval does not pass to a script under it");
        let code_linux = [
            (10, 1, "/usr/bin/tmux", None, false),
            (20, 10, "/usr/bin/bash", None, true),
            (30, 20, "/usr/bin/node", Some("/opt/claude-code/cli.js"), false),
            (40, 30, "/bin/sh", None, false),
        ];
        assert_eq!(walk(&code_linux, 40).as_deref(), Some(r#"["/usr/bin/node","/opt/claude-code/cli.js"]"#));
        // npx is node running npx-cli.js: walked past, to the terminal.
        let npx = [
            (10, 1, "/usr/bin/tmux", None, false),
            (20, 10, "/usr/bin/node", Some("/usr/lib/node_modules/npm/bin/npx-cli.js"), false),
        ];
        assert_eq!(walk(&npx, 20), None);
        // A shell someone types into, even inside an editor that is itself a host, is no host.
        let editor_terminal = [(10, 1, "/usr/share/code/code", None, false), (20, 10, "/usr/bin/bash", None, true)];
        assert_eq!(walk(&editor_terminal, 20), None);
        let editor_spawned = [(10, 1, "/usr/share/code/code", None, false), (20, 10, "/usr/bin/bash", None, false)];
        assert_eq!(walk(&editor_spawned, 20).as_deref(), Some("/usr/share/code/code"));
        let python_c = [(10, 1, "/usr/bin/tmux", None, false), (20, 10, "/usr/bin/python3", None, false)];
        assert_eq!(walk(&python_c, 20), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_seen_as_it_is() {
        let me = Peer::inspect(0, Some(std::process::id() as i32));
        assert_eq!(me.exe, std::env::current_exe().ok());
        assert!(!me.launched_by_broker, "a process is not its own child");
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let peer = Peer::inspect(0, Some(child.id() as i32));
        let _ = child.kill();
        let _ = child.wait();
        assert!(peer.launched_by_broker, "a program this process started is known as such");
    }
}
