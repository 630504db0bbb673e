//! A small look at source code, enough for compile and the AI tools to answer as QuantConnect
//! does: Python is parsed by a real Python parser; C# is checked for balanced brackets; an
//! `initialize` method is looked for by name.

pub(crate) fn default_file(language: &str, project_name: &str) -> (String, String) {
    let class: String = project_name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    let class = match class.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => format!("{class}Algorithm"),
        _ => "MyAlgorithm".to_owned(),
    };
    if language == "C#" {
        let body = format!(
            "namespace QuantConnect.Algorithm.CSharp\n{{\n    public class {class} : QCAlgorithm\n    {{\n        \
             public override void Initialize()\n        {{\n            SetStartDate(2024, 1, 1);\n            \
             SetCash(100000);\n            AddEquity(\"SPY\", Resolution.Minute);\n        }}\n\n        \
             public override void OnData(Slice data)\n        {{\n            if (!Portfolio.Invested)\n            \
             {{\n                SetHoldings(\"SPY\", 1);\n            }}\n        }}\n    }}\n}}\n"
        );
        ("Main.cs".to_owned(), body)
    } else {
        let body = format!(
            "# region imports\nfrom AlgorithmImports import *\n# endregion\n\n\nclass {class}(QCAlgorithm):\n\n    \
             def initialize(self):\n        self.set_start_date(2024, 1, 1)\n        self.set_cash(100000)\n        \
             self.add_equity(\"SPY\", Resolution.MINUTE)\n\n    def on_data(self, data: Slice):\n        \
             if not self.portfolio.invested:\n            self.set_holdings(\"SPY\", 1)\n"
        );
        ("main.py".to_owned(), body)
    }
}

/// The research notebook QuantConnect puts in a new project: an empty notebook for the
/// project's language.
pub(crate) fn research_notebook(language: &str) -> String {
    let (kernel, display, lang) =
        if language == "C#" { (".net-csharp", ".NET (C#)", "C#") } else { ("python3", "Python 3", "python") };
    serde_json::json!({
        "cells": [],
        "metadata": {"kernelspec": {"name": kernel, "display_name": display, "language": lang}},
        "nbformat": 4,
        "nbformat_minor": 2,
    })
    .to_string()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    CSharp,
}

fn lang_of(file_name: &str, declared: &str) -> Option<Lang> {
    let lower = file_name.to_ascii_lowercase();
    if lower.ends_with(".py") {
        Some(Lang::Python)
    } else if lower.ends_with(".cs") {
        Some(Lang::CSharp)
    } else if !lower.contains('.') {
        Some(if declared == "C#" { Lang::CSharp } else { Lang::Python })
    } else {
        None
    }
}

/// Removes string literals and comments from one line, keeping its length roughly, so
/// bracket counting is not fooled by `"("` or `# )`. `in_triple` carries a Python
/// triple-quoted string across lines.
fn strip_line(line: &str, lang: Lang, in_triple: &mut Option<&'static str>) -> String {
    let mut out = String::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if let Some(delim) = *in_triple {
            let d: Vec<char> = delim.chars().collect();
            if chars[i..].starts_with(&d) {
                *in_triple = None;
                i += 3;
            } else {
                i += 1;
            }
            continue;
        }
        let c = chars[i];
        if lang == Lang::Python && c == '#' {
            break;
        }
        if lang == Lang::CSharp && c == '/' && chars.get(i + 1) == Some(&'/') {
            break;
        }
        if c == '"' || c == '\'' {
            if lang == Lang::Python && chars[i..].starts_with(&[c, c, c]) {
                *in_triple = Some(if c == '"' { "\"\"\"" } else { "'''" });
                i += 3;
                continue;
            }
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Problems found in one file, as `File: NAME Line: N - message` lines.
pub(crate) fn check(file_name: &str, content: &str, declared_language: &str) -> Vec<String> {
    let Some(lang) = lang_of(file_name, declared_language) else {
        return Vec::new();
    };
    if lang == Lang::Python {
        return python_errors(file_name, content);
    }
    let mut errors = Vec::new();
    let mut stack: Vec<(char, usize)> = Vec::new();
    let mut in_triple = None;
    for (idx, line) in content.lines().enumerate() {
        let n = idx + 1;
        let code = strip_line(line, lang, &mut in_triple);
        for c in code.chars() {
            match c {
                '(' | '[' | '{' => stack.push((c, n)),
                ')' | ']' | '}' => {
                    let open = match c {
                        ')' => '(',
                        ']' => '[',
                        _ => '{',
                    };
                    match stack.pop() {
                        Some((o, _)) if o == open => {}
                        Some((o, line_no)) => errors.push(format!(
                            "File: {file_name} Line: {n} - '{c}' does not match '{o}' opened on line {line_no}"
                        )),
                        None => errors.push(format!("File: {file_name} Line: {n} - unmatched '{c}'")),
                    }
                }
                _ => {}
            }
        }
    }
    for (c, line_no) in stack {
        errors.push(format!("File: {file_name} Line: {line_no} - '{c}' was never closed"));
    }
    errors
}

/// What Python's own grammar refuses in `content`: the first syntax error, with its line.
fn python_errors(file_name: &str, content: &str) -> Vec<String> {
    match rustpython_parser::parse(content, rustpython_parser::Mode::Module, file_name) {
        Ok(_) => Vec::new(),
        Err(e) => {
            let offset = (u32::from(e.offset) as usize).min(content.len());
            let line = content.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
            vec![format!("File: {file_name} Line: {line} - SyntaxError: {}", e.error)]
        }
    }
}

/// Whether the files define the algorithm's entry point.
pub(crate) fn has_initialize(files: &[(String, String)]) -> bool {
    files
        .iter()
        .any(|(_, c)| c.contains("def initialize(") || c.contains("def Initialize(") || c.contains("void Initialize("))
}

/// `(line, call)` for every `get_parameter(`/`GetParameter(` call, which the compile
/// answer lists as the project's parameters.
pub(crate) fn parameter_calls(content: &str) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for (idx, line) in content.lines().enumerate() {
        for call in ["get_parameter", "GetParameter"] {
            if line.contains(&format!("{call}(")) {
                out.push((idx as i64 + 1, call.to_owned()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_clean() {
        for lang in ["Py", "C#"] {
            let (name, body) = default_file(lang, "my first-project");
            assert!(check(&name, &body, lang).is_empty(), "{lang}: {body}");
            assert!(has_initialize(&[(name, body)]));
        }
    }

    #[test]
    fn finds_problems() {
        let bad = "def initialize(self)\n    x = (1, 2\n";
        let errors = check("main.py", bad, "Py");
        assert_eq!(errors.len(), 1, "Python stops at its first syntax error: {errors:?}");
        assert!(errors[0].starts_with("File: main.py Line: 1 - SyntaxError: "), "{errors:?}");
        let unclosed = check("main.py", "x = (1,\ny = 2\n", "Py");
        assert!(unclosed[0].contains("SyntaxError"), "{unclosed:?}");
        let bad_indent = check("main.py", "class A:\ndef f(self):\n    pass\n", "Py");
        assert!(bad_indent[0].starts_with("File: main.py Line: 2"), "{bad_indent:?}");
        assert!(check("main.py", "match x:\n    case 1:\n        pass\n", "Py").is_empty(), "3.10 syntax parses");
        assert!(check("main.py", "s = \"(\"  # )\n", "Py").is_empty());
        assert!(!check("Main.cs", "class A { void F() { }\n", "C#").is_empty());
    }
}
