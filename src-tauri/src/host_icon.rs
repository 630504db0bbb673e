//! The icon a desktop shows for a program, found as freedesktop desktops find it: the desktop
//! entry whose `Exec` (or `TryExec`) runs that very program names an icon, which is looked up in
//! the icon folders. A request shows it beside the program's name, so the trader recognizes the
//! program that asks at a glance.
//!
//! It reads desktop entries and image files, nothing else: it never runs a program, and what it
//! returns is an image as a `data:` URL, never a path or a file's other content. Elsewhere than
//! on freedesktop desktops there is no icon, and the name stands alone.

use std::path::{Path, PathBuf};

/// Icons larger than this are not sent to the window.
const MAX_ICON_BYTES: u64 = 512 * 1024;
/// Sizes tried in the icon theme, largest first: the window shows 20 px, at up to 3x.
const SIZES: [&str; 6] = ["64x64", "48x48", "128x128", "256x256", "32x32", "scalable"];

/// Where desktop entries and icons live: `$XDG_DATA_HOME` (or `~/.local/share`), then each of
/// `$XDG_DATA_DIRS` (or `/usr/local/share:/usr/share`).
pub fn data_dirs() -> Vec<PathBuf> {
    let home = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    let system = std::env::var("XDG_DATA_DIRS")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    home.into_iter().chain(system.split(':').filter(|d| !d.is_empty()).map(PathBuf::from)).collect()
}

/// The icon of `program` as a `data:` URL, if a desktop entry in `dirs` runs it and names an
/// icon that can be found there.
pub fn icon_for(program: &Path, dirs: &[PathBuf]) -> Option<String> {
    if !cfg!(all(unix, not(target_os = "macos"))) {
        return None;
    }
    let program = std::fs::canonicalize(program).ok()?;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir.join("applications")) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "desktop") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            if let Some(icon) = entry_icon(&text, &program) {
                return find_icon(&icon, dirs).and_then(|file| data_url(&file));
            }
        }
    }
    None
}

/// The `Icon` of a desktop entry whose `Exec` or `TryExec` runs `program` (canonical).
fn entry_icon(text: &str, program: &Path) -> Option<String> {
    let mut in_main = false;
    let (mut runs, mut icon) = (false, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_main = line == "[Desktop Entry]";
            continue;
        }
        if !in_main {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        match key.trim() {
            "Exec" | "TryExec" => runs |= exec_program(value.trim()).is_some_and(|p| p == program),
            "Icon" => icon = Some(value.trim().to_string()),
            _ => {}
        }
    }
    icon.filter(|i| runs && !i.is_empty())
}

/// The program an `Exec` line starts, canonical: its first word (quotes removed), past `env` and
/// its `NAME=value` settings, found on `PATH` when it is not a path.
fn exec_program(exec: &str) -> Option<PathBuf> {
    let mut words = exec.split_whitespace().map(|w| w.trim_matches('"'));
    let mut first = words.next()?;
    if first == "env" || first.ends_with("/env") {
        first = words.find(|w| !w.contains('=') && !w.starts_with('-'))?;
    }
    let path = Path::new(first);
    let found = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(first)).find(|p| p.is_file())?
    };
    std::fs::canonicalize(found).ok()
}

/// An icon by name in the icon folders (the hicolor theme, then pixmaps), or a path as given.
fn find_icon(icon: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let given = Path::new(icon);
    if given.is_absolute() {
        return given.is_file().then(|| given.to_path_buf());
    }
    // A name, not a path: nothing that climbs out of the icon folders.
    if icon.contains('/') {
        return None;
    }
    for dir in dirs {
        for size in SIZES {
            for ext in ["png", "svg"] {
                let candidate = dir.join("icons/hicolor").join(size).join("apps").join(format!("{icon}.{ext}"));
                if candidate.is_file() {
                    return Some(candidate);
                }
            }
        }
        for ext in ["png", "svg"] {
            let candidate = dir.join("pixmaps").join(format!("{icon}.{ext}"));
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// A PNG or SVG file as a `data:` URL; anything else, or too large, is none.
fn data_url(file: &Path) -> Option<String> {
    use base64::Engine;
    if std::fs::metadata(file).ok()?.len() > MAX_ICON_BYTES {
        return None;
    }
    let bytes = std::fs::read(file).ok()?;
    let mime = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if file.extension().is_some_and(|e| e == "svg") && String::from_utf8_lossy(&bytes).contains("<svg") {
        "image/svg+xml"
    } else {
        return None;
    };
    Some(format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
}

#[cfg(all(test, unix, not(target_os = "macos")))]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    /// A data folder with a program, a desktop entry for it and an icon in the hicolor theme.
    fn desktop(exec: &str, icon: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("bin/trading-host");
        std::fs::create_dir_all(program.parent().unwrap()).unwrap();
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        std::fs::create_dir_all(dir.path().join("applications")).unwrap();
        let exec = exec.replace("PROGRAM", &program.display().to_string());
        std::fs::write(
            dir.path().join("applications/trading-host.desktop"),
            format!(
                "[Desktop Entry]\nName=Trading Host\nExec={exec}\nIcon={icon}\n[Desktop Action new]\nExec=/bin/false\n"
            ),
        )
        .unwrap();
        let icons = dir.path().join("icons/hicolor/48x48/apps");
        std::fs::create_dir_all(&icons).unwrap();
        std::fs::write(icons.join("trading-host.png"), PNG).unwrap();
        (dir, program)
    }

    #[test]
    fn the_entry_that_runs_the_program_gives_its_themed_icon() {
        let (dir, program) = desktop("env LANG=C \"PROGRAM\" --start %U", "trading-host");
        let url = icon_for(&program, &[dir.path().to_path_buf()]).expect("an icon");
        assert!(url.starts_with("data:image/png;base64,"), "{url}");
    }

    #[test]
    fn another_program_a_missing_icon_or_a_path_that_climbs_out_give_none() {
        let (dir, _program) = desktop("PROGRAM", "trading-host");
        let dirs = [dir.path().to_path_buf()];
        assert_eq!(icon_for(Path::new("/bin/sh"), &dirs), None, "the entry runs another program");
        let (dir, program) = desktop("PROGRAM", "no-such-icon");
        assert_eq!(icon_for(&program, &[dir.path().to_path_buf()]), None);
        let (dir, program) = desktop("PROGRAM", "../../../etc/passwd");
        assert_eq!(icon_for(&program, &[dir.path().to_path_buf()]), None);
    }

    #[test]
    fn only_images_are_sent() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("secret.png");
        std::fs::write(&text, "not an image").unwrap();
        assert_eq!(data_url(&text), None);
        let svg = dir.path().join("icon.svg");
        std::fs::write(&svg, "<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap();
        assert!(data_url(&svg).unwrap().starts_with("data:image/svg+xml;base64,"));
        let big = dir.path().join("big.png");
        std::fs::write(&big, [PNG, &vec![0u8; MAX_ICON_BYTES as usize]].concat()).unwrap();
        assert_eq!(data_url(&big), None);
    }
}
