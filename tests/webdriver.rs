//! The desktop app in a real WebView under a private X server, driven over W3C WebDriver by
//! `WebKitWebDriver` (WebKitGTK's driver; Tauri's WebView is WebKitGTK on Linux).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An X server of our own, so the test needs no display and disturbs none.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        // Tests run side by side: a number another server took in the meantime makes ours
        // exit at once, and we try the next.
        for number in 90..190 {
            let lock = PathBuf::from(format!("/tmp/.X{number}-lock"));
            if let Ok(text) = std::fs::read_to_string(&lock) {
                // A lock left by a server that was killed outright is stale.
                let alive = text.trim().parse::<u32>().is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                if alive {
                    continue;
                }
                let _ = std::fs::remove_file(&lock);
                let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{number}"));
            }
            let display = format!(":{number}");
            let mut child = Command::new("Xvfb")
                .args([&display, "-screen", "0", "1280x860x24", "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb must be installed (scripts/dev.sh deps)");
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if socket.exists() {
                    return Xvfb { child, display };
                }
                assert!(Instant::now() < deadline, "Xvfb did not start on {display}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("no free X display between :90 and :189");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM lets the server remove its lock and socket; SIGKILL only if it lingers.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = crate::exit_within(&mut self.child, Duration::from_secs(3));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real notification service (dunst) on the test's own D-Bus session and X display: what the
/// app shows as OS notifications lands there, and the test reads it back with `dunstctl`. A
/// notification's actions are chosen through dunst's own action menu, whose menu program here
/// picks the action the test names.
pub struct Notifications {
    child: Child,
    dir: tempfile::TempDir,
}

impl Notifications {
    pub fn start(x: &Xvfb) -> Notifications {
        let dir = tempfile::tempdir().unwrap();
        let menu = dir.path().join("menu.sh");
        std::fs::write(
            &menu,
            format!(
                "#!/bin/sh\ncat > '{0}/offered'\ngrep -m1 -F \"#$(cat '{0}/choice') (\" '{0}/offered'\ntouch '{0}/chosen'\n",
                dir.path().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&menu, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let config = dir.path().join("dunstrc");
        std::fs::write(&config, format!("[global]\n    dmenu = {}\n", menu.display())).unwrap();
        let child = Command::new("dunst")
            .arg("-config")
            .arg(&config)
            .env("DISPLAY", &x.display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dunst must be installed (scripts/dev.sh deps)");
        // Asked of the bus itself: asking the service would have D-Bus start another dunst.
        let owned = || {
            Command::new("dbus-send")
                .args([
                    "--print-reply=literal",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.Notifications",
                ])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("true"))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !owned() {
            assert!(Instant::now() < deadline, "dunst did not take the notification service within 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Notifications { child, dir }
    }

    /// How many notifications are on screen now.
    pub fn displayed(&self) -> usize {
        let out = Command::new("dunstctl").args(["count", "displayed"]).output().expect("dunstctl runs");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
    }

    /// Wait until no notification is on screen (the app withdrew them), for at most 10 s.
    pub fn wait_until_none_displayed(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.displayed() > 0 {
            assert!(Instant::now() < deadline, "a notification is still on screen after 10 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Choose the action labelled `label` on the notification on screen, through dunst's action
    /// menu, as a user would; returns every action that menu offered, as "label (title)" lines.
    pub fn choose(&self, label: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.displayed() == 0 {
            assert!(Instant::now() < deadline, "no notification on screen to choose {label:?} on");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::write(self.dir.path().join("choice"), label).unwrap();
        let _ = std::fs::remove_file(self.dir.path().join("chosen"));
        let status = Command::new("dunstctl").arg("context").status().expect("dunstctl runs");
        assert!(status.success(), "dunstctl context failed");
        // dunst runs its menu program on its own; what it was offered shows when it has run.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.dir.path().join("chosen").exists() {
                let offered = std::fs::read_to_string(self.dir.path().join("offered")).unwrap_or_default();
                return offered.lines().map(|l| l.trim_start_matches('#').to_string()).collect();
            }
            assert!(Instant::now() < deadline, "dunst's action menu did not run within 10 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait for a notification whose title contains `title`; its (title, body).
    pub fn wait_for(&self, title: &str) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            // Shown notifications move to the history once closed; the history is JSON.
            let _ = Command::new("dunstctl").arg("close-all").status();
            let out = Command::new("dunstctl").arg("history").output().expect("dunstctl runs");
            let history: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let seen: Vec<(String, String)> = history["data"][0]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| {
                    let field = |name: &str| n[name]["data"].as_str().unwrap_or_default().to_string();
                    (field("summary"), field("body"))
                })
                .collect();
            if let Some(found) = seen.iter().find(|(summary, _)| summary.contains(title)) {
                return found.clone();
            }
            assert!(Instant::now() < deadline, "no notification titled {title:?}; seen: {seen:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A WebDriver session on the app: starting it starts the app, ending it ends the app.
pub struct Session {
    driver: Child,
    /// What the driver and the app print, shown when a test fails.
    log: tempfile::NamedTempFile,
    http: reqwest::blocking::Client,
    base: String,
    screenshots: PathBuf,
}

impl Session {
    /// Start `app` with `env` on `display` through WebKitWebDriver.
    pub fn start(app: &Path, args: &[&str], env: &[(&str, String)], display: &str, screenshots: &Path) -> Session {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut command = Command::new("WebKitWebDriver");
        command
            .arg(format!("--port={port}"))
            // Without it, Tauri does not enable automation and session creation hangs.
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            .env("DISPLAY", display)
            .env("NO_AT_BRIDGE", "1")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log.reopen().unwrap()));
        // Its own process group: the app it starts is ended with it, whatever the app does
        // when its window is closed (Keybridge stays in the tray).
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        for (key, value) in env {
            command.env(key, value);
        }
        let driver = command.spawn().expect("WebKitWebDriver must be installed (webkit2gtk-driver)");
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(15);
        while http.get(format!("{base}/status")).send().is_err() {
            assert!(Instant::now() < deadline, "WebKitWebDriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "webkitgtk:browserOptions": {"binary": app, "args": args}
        }}});
        let created: Value = http.post(format!("{base}/session")).json(&caps).send().unwrap().json().unwrap();
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_string();
        std::fs::create_dir_all(screenshots).unwrap();
        Session { driver, log, http, base: format!("{base}/session/{id}"), screenshots: screenshots.to_path_buf() }
    }

    fn try_send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let url = format!("{}{path}", self.base);
        // On a loaded machine WebKitWebDriver now and then answers a command with an "unknown
        // error" that says nothing, while the page is busy; the same command a moment later
        // works. Any other error is the test's to judge.
        let mut tries = 0;
        loop {
            let mut request = self.http.request(method.clone(), &url);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let reply: Value = request.send().unwrap_or_else(|e| panic!("{url}: {e}")).json().unwrap();
            let value = reply["value"].clone();
            let Some(error) = value.get("error") else { return Ok(value) };
            let silent = error == "unknown error" && value["message"].as_str().unwrap_or_default().is_empty();
            if !silent || tries == 20 {
                return Err(value);
            }
            tries += 1;
            eprintln!("WebDriver {path}: an empty \"unknown error\"; trying again ({tries})");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_send(method, path, body).unwrap_or_else(|e| {
            self.last_look();
            panic!("WebDriver {path}: {e}")
        })
    }

    /// Save what the window shows, if the driver can still tell, before a test fails.
    fn last_look(&self) {
        if let Ok(data) = self.try_send(reqwest::Method::GET, "/screenshot", None)
            && let Ok(png) = base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap_or_default())
        {
            let _ = std::fs::write(self.screenshots.join("failure.png"), png);
        }
    }

    fn post(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::POST, path, Some(body))
    }

    /// Run `script` in the page (`arguments` holds `args`); its return value.
    pub fn script(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
    }

    /// Wait until `css` matches an element, and return it.
    pub fn wait_for(&self, css: &str) -> String {
        self.wait_until(css, |_| true)
    }

    /// Wait until an element matching `css` has text containing `text`.
    pub fn wait_for_text(&self, css: &str, text: &str) -> String {
        self.wait_until(css, |t| t.contains(text))
    }

    fn wait_until(&self, css: &str, accept: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        loop {
            // A search that still fails (see `try_send`) is tried again until the deadline.
            let found = match self.try_send(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            ) {
                Ok(found) => found,
                Err(e) => {
                    last = format!("search failed: {e}");
                    Value::Null
                }
            };
            for element in found.as_array().into_iter().flatten() {
                let id = element[ELEMENT].as_str().unwrap().to_string();
                // The view may re-render between finding and reading: then look again.
                let Ok(text) = self.try_send(reqwest::Method::GET, &format!("/element/{id}/text"), None) else {
                    continue;
                };
                last = text.as_str().unwrap_or_default().to_string();
                if accept(&last) {
                    return id;
                }
            }
            if Instant::now() > deadline {
                self.screenshot("failure");
                panic!("no `{css}` as expected within 30 s (last text: {last:?})");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn text_of(&self, element: &str) -> String {
        self.send(reqwest::Method::GET, &format!("/element/{element}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn text(&self, css: &str) -> String {
        let id = self.wait_for(css);
        self.text_of(&id)
    }

    pub fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let id = self.wait_for(css);
            match self.try_send(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({}))) {
                Ok(_) => return,
                Err(e) if Instant::now() < deadline && e["error"] == "stale element reference" => {}
                // WebKit does not scroll nested scrolling boxes for us; a user would.
                Err(e) if Instant::now() < deadline && e["error"] == "element not interactable" => {
                    let element = json!({ELEMENT: id});
                    let _ = self.try_send(
                        reqwest::Method::POST,
                        "/execute/sync",
                        Some(json!({"script": "arguments[0].scrollIntoView({block: 'center', inline: 'nearest'})", "args": [element]})),
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    self.last_look();
                    panic!("cannot click `{css}`: {e}")
                }
            }
        }
    }

    /// Replace an input's value by typing, as a user would.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.wait_for(css);
        self.post(&format!("/element/{id}/clear"), json!({}));
        self.post(&format!("/element/{id}/value"), json!({"text": text}));
    }

    /// Press a key (a WebDriver key code, e.g. `\u{E00C}` for Esc) where the focus is now.
    pub fn press_key(&self, key: &str) {
        let active = self.send(reqwest::Method::GET, "/element/active", None);
        let id = active[ELEMENT].as_str().expect("an element has the focus").to_string();
        self.post(&format!("/element/{id}/value"), json!({"text": key}));
    }

    /// Type `text` where the focus is now, as a user at the keyboard would.
    pub fn type_here(&self, text: &str) {
        self.press_key(text);
    }

    /// Press Tab until the focus is on an element matching `css`, as a keyboard user moves
    /// through the window; fails if `presses` Tabs never reach it.
    pub fn tab_to(&self, css: &str, presses: usize) {
        let matches = format!("return document.activeElement && document.activeElement.matches({css:?})");
        for _ in 0..presses {
            if self.script(&matches, json!([])) == true {
                return;
            }
            self.press_key("\u{E004}");
        }
        let focused = self
            .script("const a = document.activeElement; return a ? a.outerHTML.slice(0, 200) : 'nothing'", json!([]));
        self.last_look();
        panic!("{presses} Tabs did not reach `{css}`; the focus is on {focused}");
    }

    /// Whether an element matching `css` has the focus now.
    pub fn focused(&self, css: &str) -> bool {
        self.script(&format!("return !!document.activeElement && document.activeElement.matches({css:?})"), json!([]))
            == true
    }

    pub fn count(&self, css: &str) -> usize {
        self.post("/elements", json!({"using": "css selector", "value": css})).as_array().map_or(0, Vec::len)
    }

    /// Save the window as `<name>.png` in the screenshot folder.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        // A screenshot right after a change can show the frame before it.
        std::thread::sleep(Duration::from_millis(400));
        let data = self.send(reqwest::Method::GET, "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap_or_default()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.http.delete(&self.base).send();
        let group = format!("-{}", self.driver.id());
        for signal in ["-TERM", "-KILL"] {
            let _ = Command::new("kill").args([signal, "--", &group]).stderr(Stdio::null()).status();
            let _ = crate::exit_within(&mut self.driver, Duration::from_secs(3));
        }
        let _ = self.driver.wait();
        if std::thread::panicking() {
            let mut said = String::new();
            let _ = std::fs::File::open(self.log.path()).and_then(|mut f| f.read_to_string(&mut said));
            eprintln!("WebKitWebDriver and the app said:\n{said}");
        }
    }
}
