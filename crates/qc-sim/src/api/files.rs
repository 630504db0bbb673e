//! Project files, including `/files/patch` with a unified diff.

use serde_json::{Value, json};

use super::{Answer, ApiError, Ctx, Params, ok};
use crate::state::{FileEntry, Project};
use crate::util::fmt_datetime;

pub(crate) fn file_json(project_id: i64, f: &FileEntry) -> Value {
    json!({
        "id": f.id,
        "projectId": project_id,
        "name": f.name,
        "content": f.content,
        "modified": fmt_datetime(f.modified),
        "open": false,
        "isLibrary": false,
    })
}

fn find<'p>(project: &'p mut Project, name: &str) -> Result<&'p mut FileEntry, ApiError> {
    let id = project.id;
    project
        .files
        .iter_mut()
        .find(|f| f.name == name)
        .ok_or_else(|| ApiError::new(format!("File {name} not found in project {id}.")))
}

/// A file name QuantConnect accepts: a relative path of named folders, no way out of the project.
fn check_file_name(name: &str) -> Result<(), ApiError> {
    let problem = if name.starts_with('/') || name.starts_with('\\') {
        Some("it must not start with a slash")
    } else if name.contains('\\') {
        Some("folders are separated by /")
    } else if name.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        Some("a part of the path is empty, . or ..")
    } else if name.chars().any(char::is_control) {
        Some("it holds a control character")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ApiError::new(format!("File name {name:?} is not valid: {problem}."))),
        None => Ok(()),
    }
}

pub(crate) fn create(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let name = p.str("name");
    let content = p.opt_str("content").unwrap_or_default();
    p.opt_str("codeSourceId");
    p.finish()?;
    ctx.project(id)?;
    check_file_name(&name)?;
    let file_id = ctx.acct.next_file_id;
    let now = ctx.now;
    let project = ctx.project_mut(id)?;
    if project.files.iter().any(|f| f.name == name) {
        return Err(ApiError::new(format!("File {name} already exists in project {id}.")));
    }
    project.files.push(FileEntry { id: file_id, name, content, modified: now });
    project.modified = now;
    ctx.acct.next_file_id += 1;
    ok(json!({}))
}

pub(crate) fn read(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let name = p.opt_str("name");
    p.opt_str("codeSourceId");
    p.finish()?;
    let project = ctx.project(id)?;
    let files: Vec<Value> = match name {
        Some(name) => {
            let f = project
                .files
                .iter()
                .find(|f| f.name == name)
                .ok_or_else(|| ApiError::new(format!("File {name} not found in project {id}.")))?;
            vec![file_json(id, f)]
        }
        None => project.files.iter().map(|f| file_json(id, f)).collect(),
    };
    ok(json!({ "files": files }))
}

pub(crate) fn update(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let name = p.str("name");
    let new_name = p.opt_str("newName");
    let content = p.opt_str("content");
    p.opt_str("codeSourceId");
    if new_name.is_none() && content.is_none() && p.has("name") {
        p.fail("newName or content is required");
    }
    p.finish()?;
    let now = ctx.now;
    let project = ctx.project_mut(id)?;
    if let Some(new_name) = &new_name {
        if new_name.trim().is_empty() {
            return Err(ApiError::new("newName cannot be empty."));
        }
        check_file_name(new_name)?;
        if new_name != &name && project.files.iter().any(|f| &f.name == new_name) {
            return Err(ApiError::new(format!("File {new_name} already exists in project {id}.")));
        }
    }
    let file = find(project, &name)?;
    if let Some(c) = content {
        file.content = c;
    }
    if let Some(n) = new_name {
        file.name = n;
    }
    file.modified = now;
    project.modified = now;
    ok(json!({}))
}

pub(crate) fn delete(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let name = p.str("name");
    p.opt_str("codeSourceId");
    p.finish()?;
    let now = ctx.now;
    let project = ctx.project_mut(id)?;
    find(project, &name)?;
    project.files.retain(|f| f.name != name);
    project.modified = now;
    ok(json!({}))
}

pub(crate) fn patch(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let patch = p.str("patch");
    p.opt_str("codeSourceId");
    p.finish()?;
    let now = ctx.now;
    let next_file_id = ctx.acct.next_file_id;
    let project = ctx.project_mut(id)?;

    let file_patches = parse(&patch).map_err(ApiError::new)?;
    // Work on a copy so a patch that fails part-way changes nothing.
    let mut files = project.files.clone();
    let mut created = 0;
    for fp in &file_patches {
        match (&fp.old_path, &fp.new_path) {
            (None, Some(new)) => {
                if files.iter().any(|f| &f.name == new) {
                    return Err(ApiError::new(format!(
                        "The patch creates {new}, which already exists in project {id}."
                    )));
                }
                let content = apply(new, "", &fp.hunks).map_err(ApiError::new)?;
                files.push(FileEntry { id: next_file_id + created, name: new.clone(), content, modified: now });
                created += 1;
            }
            (Some(old), target) => {
                let Some(pos) = files.iter().position(|f| &f.name == old) else {
                    return Err(ApiError::new(format!(
                        "The patch changes {old}, which is not a file of project {id}."
                    )));
                };
                let content = apply(old, &files[pos].content, &fp.hunks).map_err(ApiError::new)?;
                match target {
                    None => {
                        files.remove(pos);
                    }
                    Some(new) => {
                        if new != old && files.iter().any(|f| &f.name == new) {
                            return Err(ApiError::new(format!(
                                "The patch renames {old} to {new}, which already exists."
                            )));
                        }
                        let f = &mut files[pos];
                        f.content = content;
                        f.name = new.clone();
                        f.modified = now;
                    }
                }
            }
            (None, None) => return Err(ApiError::new("The patch names no file.")),
        }
    }
    project.files = files;
    project.modified = now;
    ctx.acct.next_file_id += created;
    ok(json!({}))
}

struct Hunk {
    header: String,
    old_start: usize,
    lines: Vec<(char, String)>,
}

struct FilePatch {
    old_path: Option<String>,
    new_path: Option<String>,
    hunks: Vec<Hunk>,
}

fn path_of(header: &str, prefix: char) -> Option<String> {
    // "--- a/main.py\t2024-01-01 ..." → "main.py"; /dev/null → no file.
    let raw = header.split('\t').next().unwrap_or("").trim();
    if raw == "/dev/null" {
        return None;
    }
    let stripped = raw.strip_prefix(&format!("{prefix}/")).unwrap_or(raw).to_owned();
    Some(stripped)
}

fn parse_range(s: &str) -> Option<(usize, usize)> {
    let s = s.get(1..)?;
    match s.split_once(',') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => Some((s.parse().ok()?, 1)),
    }
}

fn parse(text: &str) -> Result<Vec<FilePatch>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<FilePatch> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(old) = line.strip_prefix("--- ") {
            let Some(new) = lines.get(i + 1).and_then(|l| l.strip_prefix("+++ ")) else {
                return Err(format!("The patch line {} starts a file with '---' but no '+++' line follows.", i + 1));
            };
            out.push(FilePatch { old_path: path_of(old, 'a'), new_path: path_of(new, 'b'), hunks: Vec::new() });
            i += 2;
            continue;
        }
        if line.starts_with("@@") {
            let Some(current) = out.last_mut() else {
                return Err("The patch has a hunk before any '---'/'+++' file header.".to_owned());
            };
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (old_range, new_range) = match (parts.get(1), parts.get(2)) {
                (Some(o), Some(n)) if o.starts_with('-') && n.starts_with('+') => (parse_range(o), parse_range(n)),
                _ => (None, None),
            };
            let (Some((old_start, mut old_left)), Some((_, mut new_left))) = (old_range, new_range) else {
                return Err(format!("The hunk header {line:?} is not valid."));
            };
            let mut hunk = Hunk { header: line.to_owned(), old_start, lines: Vec::new() };
            i += 1;
            while i < lines.len() && (old_left > 0 || new_left > 0) {
                let l = lines[i];
                let (tag, rest) = match l.chars().next() {
                    // Some tools drop the single space of an empty context line.
                    None => (' ', ""),
                    Some(c @ (' ' | '-' | '+')) => (c, &l[1..]),
                    Some('\\') => {
                        i += 1;
                        continue;
                    }
                    Some(_) => break,
                };
                match tag {
                    ' ' => {
                        old_left = old_left.saturating_sub(1);
                        new_left = new_left.saturating_sub(1);
                    }
                    '-' => old_left = old_left.saturating_sub(1),
                    _ => new_left = new_left.saturating_sub(1),
                }
                hunk.lines.push((tag, rest.to_owned()));
                i += 1;
            }
            if old_left > 0 || new_left > 0 {
                return Err(format!("The hunk {line:?} is shorter than its header says."));
            }
            current.hunks.push(hunk);
            continue;
        }
        i += 1;
    }
    if out.iter().all(|f| f.hunks.is_empty()) {
        return Err("The patch contains no hunks (expected a unified diff with @@ lines).".to_owned());
    }
    Ok(out)
}

fn same_line(a: &str, b: &str) -> bool {
    a.trim_end_matches('\r') == b.trim_end_matches('\r')
}

fn apply(name: &str, content: &str, hunks: &[Hunk]) -> Result<String, String> {
    let trailing_newline = content.is_empty() || content.ends_with('\n');
    let mut lines: Vec<String> =
        if content.is_empty() { Vec::new() } else { content.lines().map(str::to_owned).collect() };
    let mut offset: isize = 0;
    let mut floor = 0usize;
    for (n, h) in hunks.iter().enumerate() {
        let old: Vec<&str> = h.lines.iter().filter(|(t, _)| *t != '+').map(|(_, l)| l.as_str()).collect();
        let new: Vec<String> = h.lines.iter().filter(|(t, _)| *t != '-').map(|(_, l)| l.clone()).collect();
        // A hunk with no old lines inserts after line `old_start`.
        let base = if old.is_empty() { h.old_start } else { h.old_start.saturating_sub(1) };
        let expected = (base as isize + offset).max(floor as isize) as usize;
        let fits = |at: usize| {
            at + old.len() <= lines.len() && old.iter().zip(&lines[at..at + old.len()]).all(|(a, b)| same_line(a, b))
        };
        let mut found = None;
        if fits(expected) {
            found = Some(expected);
        } else {
            // Like `patch`, accept the hunk a few lines away when the context matches.
            for d in 1..=lines.len() {
                if expected + d <= lines.len() && fits(expected + d) {
                    found = Some(expected + d);
                    break;
                }
                if expected >= d + floor && fits(expected - d) {
                    found = Some(expected - d);
                    break;
                }
            }
        }
        let Some(at) = found else {
            return Err(format!(
                "The patch does not apply to {name}: hunk #{} ({}) does not match the file.",
                n + 1,
                h.header
            ));
        };
        lines.splice(at..at + old.len(), new.iter().cloned());
        offset = at as isize - base as isize + new.len() as isize - old.len() as isize;
        floor = at + new.len();
    }
    let mut out = lines.join("\n");
    if trailing_newline && !lines.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_and_rejects() {
        let original = "a\nb\nc\nd\n";
        let diff = "--- a/main.py\n+++ b/main.py\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n";
        let fps = parse(diff).unwrap();
        assert_eq!(fps[0].old_path.as_deref(), Some("main.py"));
        assert_eq!(apply("main.py", original, &fps[0].hunks).unwrap(), "a\nB\nc\nd\n");

        let bad = "--- a/main.py\n+++ b/main.py\n@@ -1,2 +1,2 @@\n x\n-y\n+z\n";
        let fps = parse(bad).unwrap();
        assert!(apply("main.py", original, &fps[0].hunks).is_err());

        assert!(parse("just text").is_err());

        // A hunk whose line numbers are off still applies where its context matches.
        let shifted = "--- a/m\n+++ b/m\n@@ -5,2 +5,3 @@\n c\n d\n+e\n";
        let fps = parse(shifted).unwrap();
        assert_eq!(apply("m", original, &fps[0].hunks).unwrap(), "a\nb\nc\nd\ne\n");
    }
}
