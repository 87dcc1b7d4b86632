//! The `hive` command line: serve a folder of components, or build them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use hive::config::{HostConfig, ServerConfig};
use hive::engine::EngineSettings;
use hive::host::{Host, HostSettings};
use hive::limits::{Limits, LimitsConfig};

/// Hive runs microservices as sandboxed WebAssembly components.
#[derive(Parser)]
#[command(name = "hive", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load every .wasm in a folder and route HTTP requests to them.
    Serve(Box<ServeArgs>),
    /// Build a workspace of component crates into .wasm files.
    Build(BuildArgs),
    /// Build, serve, and rebuild and redeploy whenever a component's source
    /// changes: edit, save, curl.
    Dev(Box<ServeArgs>),
}

#[derive(Args)]
struct ServeArgs {
    /// Host config file ([server] and [limits] tables); flags override it.
    #[arg(long, env = "HIVE_CONFIG")]
    config: Option<PathBuf>,
    /// Refuse to start if any file in the folder fails to load.
    #[arg(long)]
    strict: bool,
    /// Build the component crates into the folder before serving.
    #[arg(long)]
    build: bool,
    /// Workspace of component crates used by --build.
    #[arg(long, default_value = "components")]
    components: PathBuf,
    /// Do not watch the folder: serve what was there at startup.
    #[arg(long)]
    no_watch: bool,
    /// Compile everything at startup instead of using the compile cache.
    #[arg(long)]
    no_cache: bool,
    #[command(flatten)]
    server: ServerConfig,
    #[command(flatten)]
    limits: LimitsConfig,
}

#[derive(Args)]
struct BuildArgs {
    /// Workspace of component crates to build.
    #[arg(long, default_value = "components")]
    components: PathBuf,
    /// Folder to put the .wasm files and manifests in.
    #[arg(long, default_value = "deploy")]
    out: PathBuf,
}

fn main() -> ExitCode {
    hive::logging::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args, false),
        Command::Dev(args) => serve(*args, true),
        Command::Build(args) => build(&args.components, &args.out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

fn build(components: &Path, out: &Path) -> Result<()> {
    let built = hive::builder::build_components(components, out)?;
    for component in &built {
        tracing::info!("built {}", component.wasm.display());
    }
    Ok(())
}

/// `hive serve`, or with `dev` set, `hive dev` (which always builds first
/// and rebuilds on source changes).
fn serve(args: ServeArgs, dev: bool) -> Result<()> {
    let file = match &args.config {
        Some(path) => HostConfig::load(path)?,
        None => HostConfig::default(),
    };
    let server = file.server.merged_with(&args.server);
    let limits = file
        .limits
        .merged_with(&args.limits)
        .apply(&Limits::default())
        .context("invalid limits")?;
    let dir = server.dir();
    if args.build || dev {
        build(&args.components, &dir)?;
    }
    let components = args.components.clone();
    let out_dir = dir.clone();
    let settings = HostSettings {
        dir,
        strict: args.strict,
        engine: EngineSettings {
            max_instances: server
                .max_instances
                .unwrap_or(EngineSettings::default().max_instances),
        },
        limits,
        cache_dir: (!args.no_cache).then(|| server.cache_dir()),
        data_dir: server.data_dir(),
    };
    let http = server.http();
    let watch = !args.no_watch;
    let listen = server.listen();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let host = tokio::task::spawn_blocking(move || Host::start(&settings))
            .await
            .context("loading services")??;
        let _watcher = if watch || dev {
            Some(hive::watcher::spawn(host.clone())?)
        } else {
            None
        };
        let _sources = if dev {
            Some(hive::dev::spawn(&components, &out_dir)?)
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        hive::server::serve(listener, host, &http, hive::server::shutdown_signal()).await
    })
}
