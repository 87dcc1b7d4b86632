//! What of a Python service's `requirements.txt` reaches pip. Hive
//! promises pure-Python packages from the package index, so only plain
//! requirement lines pass (`name`, `name[extra]`, version specifiers,
//! environment markers). pip options (`-r FILE`, `--index-url`, `-e`),
//! paths and URLs are refused with the line named: each would make `hive
//! build` read files, talk to other servers, or run a local project's
//! build code on the machine that builds. pip itself is then told to take
//! wheels only (`--only-binary :all:`), so no package's setup code runs.

use anyhow::{Result, bail};

/// The requirement lines of `text` (comments and blank lines dropped), or
/// an error naming the first line that is not a plain requirement.
pub fn plain_requirements(text: &str) -> Result<Vec<String>> {
    let mut kept = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = strip_comment(line).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(reason) = refusal(line) {
            bail!(
                "requirements.txt line {}: {:?} {reason}; list packages by name and version \
                 only (e.g. `flask==3.1.0`)",
                number + 1,
                crate::logging::escape(line)
            );
        }
        kept.push(line.to_string());
    }
    Ok(kept)
}

/// The line without a `#` comment (which starts the line or follows a
/// space, as pip reads it).
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    match line.find(" #").or_else(|| line.find("\t#")) {
        Some(at) => &line[..at],
        None => line,
    }
}

/// Why `line` is not a plain requirement, if it is not one.
fn refusal(line: &str) -> Option<&'static str> {
    if line.starts_with('-') {
        return Some("is a pip option");
    }
    if line.ends_with('\\') {
        return Some("continues on the next line");
    }
    // The environment marker after `;` may hold quotes and spaces; what
    // comes before it is the package and its versions.
    let requirement = line.split(';').next().unwrap_or_default().trim();
    if requirement.contains("://") || requirement.contains('@') {
        return Some("names a URL");
    }
    if requirement.contains(['/', '\\']) || requirement.starts_with(['.', '~']) {
        return Some("names a path");
    }
    let name_end = requirement
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(requirement.len());
    let (name, rest) = requirement.split_at(name_end);
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("does not start with a package name");
    }
    let rest = match rest.trim_start().strip_prefix('[') {
        Some(extras) => match extras.split_once(']') {
            Some((extras, rest))
                if extras.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ',' | ' ')
                }) =>
            {
                rest
            }
            _ => return Some("has malformed extras"),
        },
        None => rest,
    };
    let versions_ok = rest.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, '<' | '>' | '=' | '!' | '~' | ',' | '.' | '*' | '+' | ' ')
    });
    if !versions_ok {
        return Some("is not a package name with version specifiers");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_requirements_pass_and_comments_go() {
        let text = "# deps\nflask==3.1.0\n\nWerkzeug >= 3.0, <4  # pinned below\n\
                    jinja2[i18n]~=3.1\nanyio; python_version >= \"3.8\"\n";
        assert_eq!(
            plain_requirements(text).unwrap(),
            [
                "flask==3.1.0",
                "Werkzeug >= 3.0, <4",
                "jinja2[i18n]~=3.1",
                "anyio; python_version >= \"3.8\""
            ]
        );
    }

    #[test]
    fn options_paths_and_urls_are_refused_naming_the_line() {
        for bad in [
            "--index-url http://evil.example/simple",
            "-r /etc/hostname",
            "-e .",
            "--extra-index-url=http://x",
            "./local-project",
            "/abs/path/pkg.whl",
            "~/pkg",
            "pkg @ https://evil.example/pkg.whl",
            "git+https://example.com/repo.git",
            "https://example.com/pkg.tar.gz",
            "pkg==1 \\",
        ] {
            let err = plain_requirements(&format!("flask\n{bad}\n")).unwrap_err();
            assert!(err.to_string().contains("line 2"), "{bad}: {err}");
        }
    }
}
