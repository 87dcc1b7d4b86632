//! `hive new <name>` (Rust, the default): a ready-to-build component crate
//! in the components workspace.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::write;

/// Creates `dir` (a Hive service crate named `name` that greets) and adds
/// it to the workspace at `components`.
pub fn new_crate(components: &Path, dir: &Path, name: &str) -> Result<PathBuf> {
    if !components.join("Cargo.toml").is_file() {
        bail!(
            "{} has no Cargo.toml; run this from the project root or pass --components",
            components.display()
        );
    }
    // `cargo new` inside a workspace adds the crate to its members.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(&cargo)
        .args(["new", "--lib", "--vcs", "none", "--quiet"])
        .arg(dir)
        .status()
        .with_context(|| format!("running `{cargo} new`"))?;
    if !status.success() {
        bail!("`cargo new` failed for {}", dir.display());
    }
    let wit = relative_wit_path(components);
    write(&dir.join("Cargo.toml"), &cargo_toml(name))?;
    write(&dir.join("service.toml"), &manifest(name))?;
    write(&dir.join("src/lib.rs"), &lib_rs(name, &wit))?;
    Ok(dir.to_path_buf())
}

/// The shared `wit/` folder as seen from a crate inside `components`.
fn relative_wit_path(components: &Path) -> String {
    let root_wit = components.join("../wit");
    if root_wit.is_dir() {
        "../../wit".to_string()
    } else {
        "wit".to_string()
    }
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
description = "The {name} service"
version.workspace = true
edition.workspace = true
license.workspace = true

[lib]
crate-type = ["cdylib"]

[dependencies]
wit-bindgen.workspace = true
"#
    )
}

fn manifest(name: &str) -> String {
    format!(
        r#"# Copied to deploy/{name}.toml by `hive build`.
routes = ["/{name}", "/{name}/..."]

# The services it may call (typed imports and services.call), e.g.
# ["users"]; none until you add them.
calls = []

[config]
greeting = "Hello"
"#
    )
}

fn lib_rs(name: &str, wit: &str) -> String {
    let type_name: String = name
        .split(['-', '_'])
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect();
    format!(
        r#"//! `{name}`: a Hive service. Edit `handle`, then `hive build` (or save
//! while `hive dev` runs) and `curl localhost:8080/{name}`.

wit_bindgen::generate!({{
    world: "service",
    path: "{wit}",
}});

use exports::hive::service::handler::Guest;
use hive::service::config;
use hive::service::types::{{Request, Response}};

struct {type_name};

impl Guest for {type_name} {{
    fn handle(req: Request) -> Response {{
        let greeting = config::get("greeting").unwrap_or_else(|| "Hello".to_string());
        Response {{
            status: 200,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: format!("{{greeting}} from {name}: you asked for {{}}\n", req.path).into_bytes(),
        }}
    }}
}}

export!({type_name});
"#
    )
}
