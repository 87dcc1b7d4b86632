//! Service names: where they come from (a `.wasm` file's stem) and what
//! they may contain. A name becomes a route segment and a file name in the
//! services folder, so only letters, digits, `-` and `_` are allowed.

use std::path::Path;

use anyhow::{Result, bail};

/// The service name for `wasm_path`: the file stem, which must be a usable
/// URL segment since it becomes the default route.
pub fn service_name(wasm_path: &Path) -> Result<String> {
    let stem = wasm_path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or_default();
    if !is_valid_name(stem) {
        bail!("file name must be letters, digits, '-' or '_' followed by .wasm");
    }
    Ok(stem.to_string())
}

/// Longest service name. A name becomes file names in the services folder
/// (with room for the hidden temporary names beside them) and a route
/// segment, so it must stay well under the file system's 255 bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Letters, digits, `-` and `_` only, at most [`MAX_NAME_LEN`] of them:
/// safe as a URL segment and as a file name that cannot leave its folder.
pub fn is_valid_name(name: &str) -> bool {
    name_problem(name).is_none()
}

/// What is wrong with `name` as a service name, if anything: the message
/// every door (folder, admin API, cluster) gives.
pub fn name_problem(name: &str) -> Option<String> {
    if name.len() > MAX_NAME_LEN {
        return Some(format!(
            "invalid component name ({} bytes): at most {MAX_NAME_LEN} letters, digits, '-' or '_'",
            name.len()
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if name.is_empty() || !name.chars().all(allowed) {
        return Some(format!(
            "invalid component name {:?}: use letters, digits, '-' or '_'",
            crate::logging::escape(name)
        ));
    }
    None
}

/// The last component of `path`, for log lines and error messages (which
/// name files, never the absolute paths of the host's folders).
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_must_be_url_safe() {
        assert_eq!(
            service_name(Path::new("/x/hello-2.wasm")).unwrap(),
            "hello-2"
        );
        assert!(service_name(Path::new("/x/he llo.wasm")).is_err());
        assert!(service_name(Path::new("/x/.wasm")).is_err());
        assert!(service_name(Path::new("/x/caf\u{e9}.wasm")).is_err());
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(name_problem(&long).is_some_and(|p| p.contains("at most")));
        assert!(is_valid_name(&long[1..]));
    }
}
