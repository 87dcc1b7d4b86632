//! The `hive` command line: serve a folder of components, develop them,
//! build them, scaffold and inspect them, and manage a running host.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use hive::{
    Admin, AdminClient, AuthConfig, Cluster, ConnectionCaps, EngineSettings, Framework, Host,
    HostConfig, HostPolicy, HostSettings, KvBackend, Lang, Limits, LimitsConfig, LogFormat,
    Secrets, ServerConfig, TracesConfig, format_table,
};

/// The process allocator. A request allocates and frees many small
/// buffers (hyper's, Tokio's, wasmtime's call machinery) across threads,
/// which mimalloc serves from thread-local pages instead of glibc's arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hive runs microservices as sandboxed WebAssembly components.
///
/// Start with `hive serve --build` in a project made of a `components/`
/// workspace, or `hive new <name>` to add a service.
#[derive(Parser)]
#[command(name = "hive", version, about)]
struct Cli {
    /// Log as readable text or as JSON lines (RUST_LOG sets the level).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// New requests a second whose log lines the console keeps (0: every
    /// request). Warnings, errors and failures are kept whatever the rate.
    #[arg(long, env = "HIVE_LOG_CAPTURE_RATE", global = true,
          default_value_t = hive::DEFAULT_CAPTURE_PER_SECOND)]
    log_capture_rate: u32,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load every .wasm in a folder and route HTTP requests to them.
    Serve(Box<ServeArgs>),
    /// Like serve --build, and rebuild + redeploy whenever a component's
    /// source changes: edit, save, curl.
    Dev(Box<ServeArgs>),
    /// Build a workspace of component crates into .wasm files.
    Build(BuildArgs),
    /// Create a new component crate, ready to build, in the components workspace.
    New(NewArgs),
    /// Show a component's world, imports and exports, and whether this host
    /// can load it.
    Inspect(InspectArgs),
    /// List the components of a running host.
    Ls(AdminArgs),
    /// Upload a component to a running host, which deploys it live.
    Deploy(DeployArgs),
    /// Remove a component from a running host.
    Rm(RemoveArgs),
    /// Put an earlier version of a component back (the one before the
    /// version serving, or the one named by --to): a live swap.
    Rollback(RollbackArgs),
    /// Print a running host's service graph in Graphviz DOT (who calls
    /// whom, over which interface, how often, how many failed).
    Graph(AdminArgs),
    /// Print a request's trace as a tree (spans from the host's recent
    /// ones: the request, its instances, calls, kv operations, events).
    Trace(TraceArgs),
    /// Watch a running host in the terminal: request rates, latencies,
    /// component states and recent failures, refreshed live.
    Top(TopArgs),
    /// Write every WIT a guest may target (Hive's world, WASI, the typed
    /// interfaces components share) into a folder, for bindings generators.
    Wit(WitArgs),
    /// A running host's cluster: where it stands, and `adopt` to make its
    /// folder the whole cluster after Redis lost its data.
    Cluster(ClusterArgs),
    /// A running host's events: topics and groups, publishing, dead letters
    /// and their replay.
    Events(EventsArgs),
}

#[derive(Args)]
struct EventsArgs {
    #[command(subcommand)]
    action: EventsAction,
}

#[derive(Subcommand)]
enum EventsAction {
    /// Every topic and group: waiting, oldest, in flight, retried, dead;
    /// and the schedules.
    Ls(AdminArgs),
    /// Publish a message to a topic.
    Publish(PublishArgs),
    /// Show a group's dead letters, with why each failed.
    Dead(GroupArgs),
    /// Put a group's dead letters back on its queue (attempts start over).
    Replay(GroupArgs),
}

#[derive(Args)]
struct PublishArgs {
    /// The topic.
    topic: String,
    /// The payload: text, or @FILE for a file's bytes (@- for stdin).
    #[arg(long)]
    data: String,
    /// Its content type.
    #[arg(long)]
    content_type: Option<String>,
    /// A dedup key: publishes with the same key within 10 minutes are one.
    #[arg(long)]
    dedup: Option<String>,
    /// Deliver no earlier than this many milliseconds from now.
    #[arg(long)]
    delay_ms: Option<u64>,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Args)]
struct GroupArgs {
    /// The topic.
    topic: String,
    /// The group (a subscriber's name, unless its manifest names another).
    group: String,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Args)]
struct ClusterArgs {
    #[command(subcommand)]
    action: ClusterAction,
}

#[derive(Subcommand)]
enum ClusterAction {
    /// Show the cluster this host follows, its version, the hosts that
    /// report, and any record it refuses.
    Status(AdminArgs),
    /// Publish this host's folder as the whole cluster, replacing what
    /// Redis holds: after Redis was flushed or restored from an older copy,
    /// when this host's folder should win.
    Adopt(AdminArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Host config file ([server] and [limits] tables); flags override it.
    #[arg(long, env = "HIVE_CONFIG")]
    config: Option<PathBuf>,
    /// Refuse to start if any file in the folder fails to load, and let a
    /// service whose manifest has no `calls` call nothing.
    #[arg(long)]
    strict: bool,
    /// Build the component crates into the folder before serving.
    #[arg(long)]
    build: bool,
    /// Workspace of component crates used by --build and dev.
    #[arg(long, default_value = "components")]
    components: PathBuf,
    /// Do not watch the folder: serve what was there at startup.
    #[arg(long)]
    no_watch: bool,
    /// Compile everything at startup instead of using the compile cache.
    #[arg(long)]
    no_cache: bool,
    /// With --cluster: forget which cluster this folder followed and take
    /// Redis as it is now (its set replaces the folder; an empty Redis
    /// starts a new cluster from the folder). The answer to a host that
    /// refuses an empty or rewound Redis, when Redis should win.
    #[arg(long)]
    cluster_init: bool,
    #[command(flatten)]
    server: ServerConfig,
    #[command(flatten)]
    limits: LimitsConfig,
    #[command(flatten)]
    traces: TracesConfig,
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

#[derive(Args)]
struct NewArgs {
    /// The service's name; it becomes the folder, the .wasm and the route.
    name: String,
    /// The language to write it in.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
    /// For Python: write it as a Flask (WSGI) or Starlette (ASGI) app,
    /// with its pinned requirements.
    #[arg(long, value_enum, default_value_t = Framework::None)]
    framework: Framework,
    /// Workspace to add the crate to.
    #[arg(long, default_value = "components")]
    components: PathBuf,
}

#[derive(Args)]
struct InspectArgs {
    /// The .wasm file to inspect.
    file: PathBuf,
}

#[derive(Args, Clone)]
struct AdminArgs {
    /// The running host's admin API.
    #[arg(long, env = "HIVE_ADMIN", default_value = "http://127.0.0.1:9080")]
    admin: String,
    /// Bearer token for the admin API.
    #[arg(long, env = "HIVE_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Args)]
struct DeployArgs {
    /// The .wasm to deploy.
    file: PathBuf,
    /// Its manifest (routes, config, limits); default: <file>.toml if present.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The service name; default: the file's name without .wasm.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Args)]
struct WitArgs {
    /// Folder to write the WIT into.
    #[arg(long)]
    out: PathBuf,
    /// Folder of components whose shared interfaces to include.
    #[arg(long, default_value = "deploy", conflicts_with = "admin")]
    dir: PathBuf,
    /// Take the shared interfaces from a running host's admin API instead.
    #[arg(long)]
    admin: Option<String>,
    /// Bearer token for the admin API.
    #[arg(long, env = "HIVE_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Args)]
struct TraceArgs {
    /// The request id (its `x-request-id` response header, or a failure's
    /// `error_id`).
    request_id: String,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Args)]
struct RemoveArgs {
    /// The service to remove.
    name: String,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Args)]
struct RollbackArgs {
    /// The component to roll back.
    name: String,
    /// The digest (or its first digits) of the version to put back; see
    /// `GET /components/<name>/versions`. Default: the version before.
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Args)]
struct TopArgs {
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 2.0, value_parser = refresh_interval)]
    interval: f64,
    #[command(flatten)]
    admin: AdminArgs,
}

/// A refresh interval from 0.2 s to an hour.
fn refresh_interval(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.2..=3600.0).contains(&seconds) {
        Ok(seconds)
    } else {
        Err("give between 0.2 and 3600 seconds".to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _log = hive::init_logging(cli.log_format, cli.log_capture_rate);
    let result = match cli.command {
        Command::Serve(args) => serve(*args, false),
        Command::Dev(args) => serve(*args, true),
        Command::Build(args) => build(&args.components, &args.out),
        Command::New(args) => new(&args),
        Command::Inspect(args) => inspect(&args.file),
        Command::Ls(args) => list(&args),
        Command::Deploy(args) => deploy(&args),
        Command::Rm(args) => remove(&args),
        Command::Rollback(args) => roll_back(&args),
        Command::Graph(args) => graph(&args),
        Command::Trace(args) => trace(&args),
        Command::Top(args) => top(&args),
        Command::Wit(args) => wit(&args),
        Command::Cluster(args) => cluster(&args),
        Command::Events(args) => events(&args),
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
    let built = hive::build_components(components, out)?;
    for component in &built {
        tracing::info!("built {}", component.wasm.display());
    }
    Ok(())
}

fn new(args: &NewArgs) -> Result<()> {
    let dir = hive::new_component(&args.components, &args.name, args.lang, args.framework)?;
    println!(
        "created {}\nnext: `hive build` (or run `hive dev`), then curl localhost:8080/{}",
        dir.display(),
        args.name
    );
    Ok(())
}

fn inspect(file: &Path) -> Result<()> {
    let report = hive::inspect(file)?;
    println!("{report}");
    match report.loadable {
        Ok(()) => Ok(()),
        Err(_) => anyhow::bail!("{} cannot be served by this host", file.display()),
    }
}

fn client(args: &AdminArgs) -> Result<AdminClient> {
    AdminClient::new(&args.admin, args.token.clone())
}

fn list(args: &AdminArgs) -> Result<()> {
    print!("{}", format_table(&client(args)?.components()?));
    Ok(())
}

fn deploy(args: &DeployArgs) -> Result<()> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => hive::service_name(&args.file)?,
    };
    let sibling = args.file.with_extension("toml");
    let manifest = args
        .manifest
        .clone()
        .or_else(|| sibling.is_file().then_some(sibling));
    let entry = client(&args.admin)?.deploy(&name, &args.file, manifest.as_deref())?;
    println!(
        "{name} is {} ({}), routes: {}",
        entry["state"].as_str().unwrap_or("?"),
        entry["digest"]
            .as_str()
            .map(|d| &d[..d.len().min(12)])
            .unwrap_or(""),
        entry["routes"]
    );
    Ok(())
}

fn wit(args: &WitArgs) -> Result<()> {
    let shared = match &args.admin {
        Some(admin) => AdminClient::new(admin, args.token.clone())?.shared_wit()?,
        None if args.dir.is_dir() => hive::shared_packages_in(&args.dir)?,
        // No components yet: Hive's world and WASI are still worth having.
        None => Default::default(),
    };
    let written = hive::write_wit(&args.out, &shared)?;
    println!(
        "wrote {} files to {} (Hive's world, WASI 0.2{})",
        written.len(),
        args.out.display(),
        if shared.is_empty() {
            String::new()
        } else {
            format!(
                ", {}",
                shared.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        }
    );
    Ok(())
}

fn remove(args: &RemoveArgs) -> Result<()> {
    client(&args.admin)?.remove(&args.name)?;
    println!("removed {}", args.name);
    Ok(())
}

fn roll_back(args: &RollbackArgs) -> Result<()> {
    let digest = client(&args.admin)?.roll_back(&args.name, args.to.as_deref())?;
    println!(
        "{} rolled back to {}",
        args.name,
        &digest[..digest.len().min(12)]
    );
    Ok(())
}

fn graph(args: &AdminArgs) -> Result<()> {
    print!("{}", client(args)?.graph_dot()?);
    Ok(())
}

fn trace(args: &TraceArgs) -> Result<()> {
    let id =
        percent_encoding::utf8_percent_encode(&args.request_id, percent_encoding::NON_ALPHANUMERIC);
    let view = client(&args.admin)?.get_json(&format!("/requests/{id}/trace"))?;
    print!("{}", hive::format_trace(&view));
    Ok(())
}

fn top(args: &TopArgs) -> Result<()> {
    let interval = std::time::Duration::from_secs_f64(args.interval);
    hive::top(&client(&args.admin)?, &args.admin.admin, interval)
}

fn events(args: &EventsArgs) -> Result<()> {
    match &args.action {
        EventsAction::Ls(admin) => {
            print!("{}", hive::format_events_table(&client(admin)?.events()?))
        }
        EventsAction::Publish(publish) => {
            let payload = match publish.data.strip_prefix('@') {
                Some("-") => {
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                        .context("reading the payload from stdin")?;
                    bytes
                }
                Some(file) => std::fs::read(file).with_context(|| format!("reading {file}"))?,
                None => publish.data.clone().into_bytes(),
            };
            let id = client(&publish.admin)?.publish_event(
                &publish.topic,
                payload,
                publish.content_type.as_deref(),
                publish.dedup.as_deref(),
                publish.delay_ms,
            )?;
            println!("published {id} to {}", publish.topic);
        }
        EventsAction::Dead(group) => {
            let letters = client(&group.admin)?.dead_letters(&group.topic, &group.group)?;
            if letters.is_empty() {
                println!(
                    "no dead letters for {} in group {}",
                    group.topic, group.group
                );
            }
            for letter in letters {
                println!(
                    "{}  attempts {}  {}\n  payload: {}",
                    letter["header"]["id"].as_str().unwrap_or("?"),
                    letter["attempts"],
                    letter["reason"].as_str().unwrap_or(""),
                    letter["preview"].as_str().unwrap_or("")
                );
            }
        }
        EventsAction::Replay(group) => {
            let count = client(&group.admin)?.replay(&group.topic, &group.group)?;
            println!(
                "{count} dead letter(s) of {} in group {} are due again",
                group.topic, group.group
            );
        }
    }
    Ok(())
}

fn cluster(args: &ClusterArgs) -> Result<()> {
    match &args.action {
        ClusterAction::Status(admin) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&client(admin)?.cluster()?)?
            );
        }
        ClusterAction::Adopt(admin) => {
            let adopted = client(admin)?.adopt()?;
            println!(
                "cluster {} is now this host's folder, at version {}",
                adopted["id"].as_str().unwrap_or("?"),
                adopted["version"]
            );
        }
    }
    Ok(())
}

/// This host as a member of the cluster in Redis at `url`, named after the
/// machine and its port. Nothing is read from Redis yet.
fn cluster_member(
    url: &str,
    dir: &Path,
    limits: &Limits,
    address: std::net::SocketAddr,
    init: bool,
) -> Result<Cluster> {
    let machine = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let host_id = format!("{machine}:{}", address.port());
    // A new host of a cluster may start with no folder yet.
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if init {
        hive::forget_cluster(dir)?;
        tracing::info!("--cluster-init: this folder follows whatever cluster Redis holds now");
    }
    tracing::info!("joining the cluster as {host_id}");
    Cluster::new(url, dir, limits.clone(), host_id, address.to_string())
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
    let upload_timeout = limits.body_timeout;
    let service_limits = limits.clone();
    let dir = server.dir();
    if args.build || dev {
        build(&args.components, &dir)?;
    }
    let settings = HostSettings {
        dir: dir.clone(),
        strict: args.strict,
        engine: EngineSettings {
            max_instances: server
                .max_instances()?
                .unwrap_or(EngineSettings::default().max_instances),
        },
        limits,
        cache_dir: (!args.no_cache).then(|| server.cache_dir()),
        kv: match &server.kv {
            None if server.kv_durability.is_some() => {
                anyhow::bail!("kv-durability applies to Redis: set --kv (or [server] kv) too")
            }
            Some(url) => KvBackend::Redis(url.clone(), server.kv_durability.unwrap_or_default()),
            None => KvBackend::Embedded(server.data_dir()),
        },
        policy: HostPolicy {
            secrets: Secrets::new(server.secrets.as_deref()),
            auth: file
                .auth
                .clone()
                .map(AuthConfig::check)
                .transpose()
                .context("in the host config")?,
            strict_grants: args.strict,
        },
        traces: file
            .traces
            .merged_with(&args.traces)
            .settings(|name| std::env::var(name).ok())
            .context("in the trace settings")?,
    };
    let http = server.http()?;
    let listen = server.listen();
    let admin_listen = server.admin_listen();
    let tls = match (&server.tls_cert, &server.tls_key) {
        (Some(cert), Some(key)) => Some(hive::tls_acceptor(cert, key)?),
        (None, None) => None,
        _ => anyhow::bail!("TLS needs both a certificate (tls-cert) and a key (tls-key)"),
    };
    let token = server.admin_token()?;
    if server.cluster.is_some() && token.is_none() {
        anyhow::bail!(
            "--cluster needs an admin token on every host (HIVE_ADMIN_TOKEN or \
             --admin-token-file): a deploy through any host's admin API changes every host, \
             so no host of a cluster may take one without it"
        );
    }
    anyhow::ensure!(
        !args.cluster_init || server.cluster.is_some(),
        "--cluster-init needs --cluster"
    );
    let admin = Admin::new(token, tls.clone(), upload_timeout);
    let watch = !args.no_watch || dev;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        // The admin API comes up first, so /health answers (and /ready says
        // no) while the folder is loading.
        let caps = ConnectionCaps::for_this_process(http.max_connections);
        let admin_listener = admin.bind(admin_listen).await?;
        tokio::spawn(hive::serve_admin(admin_listener, admin.clone(), caps.admin));

        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        // In a cluster, the folder is brought to the cluster's set before
        // anything loads, so this host reports ready serving it.
        let cluster = match &server.cluster {
            Some(url) => {
                let address = listener
                    .local_addr()
                    .context("reading the listen address")?;
                let member = cluster_member(url, &dir, &service_limits, address, args.cluster_init);
                let cluster = Arc::new(member?);
                cluster.catch_up().await;
                Some(cluster)
            }
            None => None,
        };
        let host = tokio::task::spawn_blocking(move || Host::start(&settings))
            .await
            .context("loading services")??;
        let _cluster = cluster.map(|cluster| {
            admin.set_cluster(cluster.clone());
            cluster.spawn(host.registry.clone())
        });
        let _watcher = if watch || server.cluster.is_some() {
            Some(hive::watch_folder(host.registry.clone())?)
        } else {
            None
        };
        let _secrets = hive::watch_secrets(host.registry.clone())?;
        let _sources = if dev {
            Some(hive::watch_sources(&args.components, &dir)?)
        } else {
            None
        };
        hive::subscribe_deployed(&host).await;
        let _events = hive::run_events(host.clone());
        admin.set_host(host.clone());
        let shutdown = hive::shutdown_signal();
        let served = hive::serve(listener, host.clone(), &http, tls, caps.public, shutdown).await;
        host.flush_traces().await;
        served
    })
}
