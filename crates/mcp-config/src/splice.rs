//! Editing a JSON document's text in place: one member of an object replaced or added, and
//! every other byte as it was, so numbers (`12345678901234567890123`, `-0`), escapes, spacing
//! and key order survive exactly. The text has been checked by `serde_json` first; this scanner
//! only finds where things are, and refuses an object that names a key twice.

use std::ops::Range;

/// An object in the text: where its braces are and its members.
#[derive(Debug)]
pub(crate) struct Object {
    open: usize,
    close: usize,
    members: Vec<Member>,
}

#[derive(Debug)]
struct Member {
    key: String,
    key_start: usize,
    value: Range<usize>,
}

/// A key that appears twice in one object: which, and where the second one starts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Duplicate {
    pub key: String,
    pub line: usize,
    pub column: usize,
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
}

impl<'a> Scanner<'a> {
    fn skip_ws(&self, mut i: usize) -> usize {
        while i < self.bytes.len() && matches!(self.bytes[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    }

    /// `i` at an opening quote; the index after the closing one.
    fn string_end(&self, mut i: usize) -> usize {
        i += 1;
        while i < self.bytes.len() {
            match self.bytes[i] {
                b'\\' => i += 2,
                b'"' => return i + 1,
                _ => i += 1,
            }
        }
        i
    }

    /// The end of the value starting at `i`, checking every object inside for duplicates.
    fn value_end(&self, i: usize) -> Result<usize, Duplicate> {
        match self.bytes.get(i) {
            Some(b'{') => Ok(self.object(i)?.close + 1),
            Some(b'[') => {
                let mut j = self.skip_ws(i + 1);
                if self.bytes.get(j) == Some(&b']') {
                    return Ok(j + 1);
                }
                loop {
                    j = self.skip_ws(self.value_end(j)?);
                    match self.bytes.get(j) {
                        Some(b',') => j = self.skip_ws(j + 1),
                        _ => return Ok(j + 1),
                    }
                }
            }
            Some(b'"') => Ok(self.string_end(i)),
            _ => {
                let mut j = i;
                while j < self.bytes.len()
                    && !matches!(self.bytes[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                {
                    j += 1;
                }
                Ok(j)
            }
        }
    }

    /// The object whose `{` is at `open`.
    fn object(&self, open: usize) -> Result<Object, Duplicate> {
        let mut members: Vec<Member> = Vec::new();
        let mut j = self.skip_ws(open + 1);
        if self.bytes.get(j) == Some(&b'}') {
            return Ok(Object { open, close: j, members });
        }
        loop {
            let key_start = j;
            let key_end = self.string_end(j);
            let key: String = serde_json::from_str(&self.text[key_start..key_end]).unwrap_or_default();
            if members.iter().any(|m| m.key == key) {
                let (line, column) = line_column(self.text, key_start);
                return Err(Duplicate { key, line, column });
            }
            j = self.skip_ws(key_end);
            j = self.skip_ws(j + 1); // the colon
            let value_start = j;
            let value_end = self.value_end(j)?;
            members.push(Member { key, key_start, value: value_start..value_end });
            j = self.skip_ws(value_end);
            match self.bytes.get(j) {
                Some(b',') => j = self.skip_ws(j + 1),
                _ => return Ok(Object { open, close: j, members }),
            }
        }
    }
}

fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The top-level object of `text` (already known to be one), every object in it checked for
/// duplicate keys.
pub(crate) fn root(text: &str) -> Result<Object, Duplicate> {
    let scanner = Scanner { text, bytes: text.as_bytes() };
    let open = scanner.skip_ws(text.strip_prefix('\u{feff}').map_or(0, |_| 3));
    let root = scanner.object(open)?;
    Ok(root)
}

/// The object that is the value of `key` in `object`, if it is one.
pub(crate) fn member_object(text: &str, object: &Object, key: &str) -> Option<Object> {
    let member = object.members.iter().find(|m| m.key == key)?;
    if text.as_bytes().get(member.value.start) != Some(&b'{') {
        return None;
    }
    Scanner { text, bytes: text.as_bytes() }.object(member.value.start).ok()
}

/// The white space before the line that holds `at`'s first non-blank character.
fn indent_of(text: &str, at: usize) -> &str {
    let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
    let line = &text[line_start..at];
    &line[..line.len() - line.trim_start().len()]
}

/// `value` (pretty JSON) with its lines after the first indented by `indent`.
fn indented(value: &str, indent: &str) -> String {
    value
        .lines()
        .enumerate()
        .map(|(n, l)| if n == 0 { l.to_string() } else { format!("{indent}{l}") })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with `key`'s value in `object` set to `value` (pretty JSON): replaced where it is,
/// or added after the last member with the same indentation.
pub(crate) fn set_member(text: &str, object: &Object, key: &str, value: &str) -> String {
    if let Some(member) = object.members.iter().find(|m| m.key == key) {
        let indent = indent_of(text, member.key_start);
        return format!("{}{}{}", &text[..member.value.start], indented(value, indent), &text[member.value.end..]);
    }
    let quoted = serde_json::to_string(key).unwrap_or_default();
    match object.members.last() {
        Some(last) => {
            let indent = indent_of(text, last.key_start);
            let on_own_line = text[..last.key_start].trim_end_matches([' ', '\t']).ends_with('\n');
            let separator = if on_own_line { format!(",\n{indent}") } else { ", ".to_string() };
            format!(
                "{}{separator}{quoted}: {}{}",
                &text[..last.value.end],
                indented(value, if on_own_line { indent } else { "" }),
                &text[last.value.end..]
            )
        }
        None => {
            let outer = indent_of(text, object.open);
            let inner = format!("{outer}  ");
            format!(
                "{}\n{inner}{quoted}: {}\n{outer}{}",
                &text[..object.open + 1],
                indented(value, &inner),
                &text[object.close..]
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_escapes_and_spacing_survive_an_edit() {
        let text = "{\n  \"big\": 12345678901234567890123,\n  \"neg\": -0,\n  \"esc\": \"a\\u00e9\",\n  \"servers\": {\n    \"a\": {\"x\": 1e400}\n  }\n}\n";
        let root = root(text).unwrap();
        let servers = member_object(text, &root, "servers").unwrap();
        let added = set_member(text, &servers, "qc", "{\n  \"command\": \"/b\"\n}");
        assert!(added.contains("12345678901234567890123") && added.contains("-0,") && added.contains("\\u00e9"));
        assert!(added.contains("1e400"));
        assert!(
            added.contains("    \"a\": {\"x\": 1e400},\n    \"qc\": {\n      \"command\": \"/b\"\n    }\n  }"),
            "{added}"
        );
        let root2 = super::root(&added).unwrap();
        let servers2 = member_object(&added, &root2, "servers").unwrap();
        let replaced = set_member(&added, &servers2, "qc", "{\n  \"command\": \"/c\"\n}");
        assert_eq!(replaced, added.replace("\"/b\"", "\"/c\""));
    }

    #[test]
    fn a_key_named_twice_is_found_with_its_place() {
        let text = "{\n  \"mcpServers\": {\n    \"a\": {},\n    \"a\": {}\n  }\n}";
        assert_eq!(root(text).unwrap_err(), Duplicate { key: "a".into(), line: 4, column: 5 });
        assert!(root("{\"a\": [{\"b\": 1, \"b\": 2}]}").is_err(), "inside arrays too");
        assert!(root("{\"a\": {\"b\": 1}, \"c\": {\"b\": 2}}").is_ok(), "the same key in two objects is fine");
    }

    #[test]
    fn a_member_is_added_to_an_empty_object_and_to_a_one_line_one() {
        let empty = "{\"mcpServers\": {}}";
        let root1 = root(empty).unwrap();
        let servers = member_object(empty, &root1, "mcpServers").unwrap();
        let out = set_member(empty, &servers, "qc", "{\n  \"command\": \"/b\"\n}");
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["mcpServers"]["qc"]["command"], "/b", "{out}");
        let one_line = "{\"g\": 1, \"mcpServers\": {\"z\": {\"command\": \"z\"}}}";
        let root2 = root(one_line).unwrap();
        let servers = member_object(one_line, &root2, "mcpServers").unwrap();
        let out = set_member(one_line, &servers, "qc", "{\"command\": \"/b\"}");
        assert_eq!(out, "{\"g\": 1, \"mcpServers\": {\"z\": {\"command\": \"z\"}, \"qc\": {\"command\": \"/b\"}}}");
    }
}
