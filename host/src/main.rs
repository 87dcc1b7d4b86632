//! The `hive` command line: serve a folder of components, or build them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use hive::engine::EngineSettings;
use hive::host::{Host, HostSettings};
use hive::limits::Limits;

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
    Serve(ServeArgs),
    /// Build a workspace of component crates into .wasm files.
    Build(BuildArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Folder of .wasm components (and their .toml manifests) to serve.
    #[arg(long, env = "HIVE_DIR", default_value = "deploy")]
    dir: PathBuf,
    /// Address to accept HTTP on; port 0 picks a free port.
    #[arg(long, env = "HIVE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Refuse to start if any file in the folder fails to load.
    #[arg(long)]
    strict: bool,
    /// Build the component crates into the folder before serving.
    #[arg(long)]
    build: bool,
    /// Workspace of component crates used by --build.
    #[arg(long, default_value = "components")]
    components: PathBuf,
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
        Command::Serve(args) => serve(args),
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

fn build(components: &std::path::Path, out: &std::path::Path) -> Result<()> {
    let built = hive::builder::build_components(components, out)?;
    for component in &built {
        tracing::info!("built {}", component.wasm.display());
    }
    Ok(())
}

fn serve(args: ServeArgs) -> Result<()> {
    if args.build {
        build(&args.components, &args.dir)?;
    }
    let settings = HostSettings {
        dir: args.dir,
        strict: args.strict,
        engine: EngineSettings::default(),
        limits: Limits::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let host = tokio::task::spawn_blocking(move || Host::start(&settings))
            .await
            .context("loading services")??;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        hive::server::serve(listener, host, hive::server::shutdown_signal()).await
    })
}
