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

/// Letters, digits, `-` and `_` only: safe as a URL segment and as a file
/// name that cannot leave its folder.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
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
    }
}
