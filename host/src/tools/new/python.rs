//! `hive new --lang python <name>`: a Python service folder with an
//! `app.py` (a `Handler` using config, kv and log; or, with `--framework`,
//! a Flask or Starlette app using them through the `hive` package), its
//! manifest, its `requirements.txt`, and editor stubs (the generated
//! bindings' signatures and the `hive` package).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Framework, write};
use crate::tools::build::python_package;
use crate::tools::componentize::{self, Componentize};

/// Creates `dir`, the Python service `name` written with `framework`, in
/// the workspace `components`.
pub fn new_app(components: &Path, dir: &Path, name: &str, framework: Framework) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (app, pinned) = match framework {
        Framework::None => (app_py(name), ""),
        Framework::Flask => (flask_app_py(name), "flask==3.1.0\n"),
        Framework::Starlette => (starlette_app_py(name), "starlette==0.46.2\n"),
    };
    write(&dir.join("app.py"), &app)?;
    write(&dir.join("service.toml"), &manifest(name))?;
    write(
        &dir.join("requirements.txt"),
        &format!(
            "# Pure-Python packages this service needs, pinned; `hive build` bundles them.\n{pinned}"
        ),
    )?;
    write(&dir.join(".gitignore"), "stubs/\n__pycache__/\n")?;
    if let Err(err) = write_stubs(components, dir) {
        // The service builds without them; only an editor misses them.
        tracing::warn!("editor stubs were not written: {err:#}");
    }
    Ok(dir.to_path_buf())
}

/// `stubs/`: the generated bindings' signatures, for editors and type
/// checkers only (the build makes its own).
fn write_stubs(components: &Path, dir: &Path) -> Result<()> {
    let components = std::path::absolute(components)?;
    let wit = components.parent().unwrap_or(Path::new(".")).join("wit");
    let tool = Componentize::ensure(&Componentize::tools_dir(&components))?;
    let output = tool
        .command()
        .arg("-d")
        .arg(&wit)
        .args(["-w", "hive:service/service@0.1.0", "bindings"])
        .arg(dir.join("stubs"))
        .output()
        .context("running componentize-py")?;
    componentize::check(&output, "componentize-py bindings")?;
    python_package::write_into(dir)?;
    let written = dir.join("python/hive");
    let stubs = dir.join("stubs/hive");
    std::fs::rename(&written, &stubs).with_context(|| format!("moving {}", written.display()))?;
    std::fs::remove_dir(dir.join("python")).with_context(|| format!("tidying {}", dir.display()))
}

fn app_py(name: &str) -> String {
    format!(
        r#""""`{name}`: a Hive service in Python. Edit `handle`, then `hive build` (or
save while `hive dev` runs) and `curl localhost:8080/{name}`.

Import everything at the top: the build snapshots this module, and nothing
can be imported later. Pure-Python packages go in requirements.txt.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import config, kv, log
from wit_world.imports.types import Request, Response


class Handler(exports.Handler):
    def handle(self, req: Request) -> Response:
        greeting = config.get("greeting") or "Hello"
        try:
            # Each service has its own key-value store.
            visits = kv.increment("visits", 1)
        except Err as err:
            log.log(log.Level.WARN, f"kv failed: {{err.value!r}}")
            visits = 0
        log.log(log.Level.INFO, f"{{req.method}} {{req.path}}, visit {{visits}}")
        body = f"{{greeting}} from {name}: you asked for {{req.path}} (visit {{visits}})\n"
        return Response(200, [("content-type", "text/plain; charset=utf-8")], body.encode())
"#
    )
}

fn flask_app_py(name: &str) -> String {
    format!(
        r#""""`{name}`: a Flask app served by Hive. Edit it as any Flask app, then
`hive build` (or save while `hive dev` runs) and
`curl localhost:8080/{name}/hi`. It runs under gunicorn too; `hive` gives it
the service's config, key-value store, log and calls to other services.

Pure-Python packages go in requirements.txt, pinned.
"""

from flask import Flask, jsonify, request

import hive

app = Flask(__name__)


@app.get("/{name}")
@app.get("/{name}/<path:rest>")
def hello(rest=""):
    greeting = hive.config.get("greeting") or "Hello"
    # Each service has its own key-value store.
    visits = hive.kv.increment("visits", 1)
    return jsonify(greeting=f"{{greeting}} from {name}", path=request.path, visits=visits)


# The one line that makes the app this service's handler.
Handler = hive.wsgi(app)
"#
    )
}

fn starlette_app_py(name: &str) -> String {
    format!(
        r#""""`{name}`: a Starlette app served by Hive. Edit it as any Starlette
app, then `hive build` (or save while `hive dev` runs) and
`curl localhost:8080/{name}/hi`. It runs under uvicorn too; `hive` gives it
the service's config, key-value store, log and calls to other services.

Pure-Python packages go in requirements.txt, pinned.
"""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import hive


async def hello(request):
    greeting = hive.config.get("greeting") or "Hello"
    # Each service has its own key-value store.
    visits = hive.kv.increment("visits", 1)
    return JSONResponse(
        {{"greeting": f"{{greeting}} from {name}", "path": request.url.path, "visits": visits}}
    )


app = Starlette(routes=[Route("/{name}", hello), Route("/{name}/{{rest:path}}", hello)])

# The one line that makes the app this service's handler.
Handler = hive.asgi(app)
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

[limits]
# CPython's memory image starts at about 13 MiB; below about 20 it fails.
memory-mib = 64
# A fresh instance per request costs a Python service about 2 ms (Rust:
# about 0.03 ms); a reused one about 0.1 ms. Reuse keeps module globals
# between requests (the app above keeps none: its state is in kv) and
# shares one instance's memory across requests, one at a time. Set it to 1
# for a fresh instance every request; `prewarm = 4` then makes instances
# ahead, off the request path, which takes that to about 1 ms.
instance-reuse = 100
"#
    )
}
