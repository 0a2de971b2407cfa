//! `weir serve`: the web app and its JSON API over a data directory, on loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use weir_pipeline::LocalStore;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The data directory `weir analyze` wrote (DIR/captures/ID/...), or a copy of the
    /// bucket (`aws s3 sync s3://BUCKET/captures DIR/captures`).
    #[arg(long, default_value = "weir-data", value_name = "DIR")]
    data_dir: PathBuf,
    /// Serve the functions' bucket instead (S3 or LocalStack, with the same settings as the
    /// functions: the standard AWS variables and AWS_ENDPOINT_URL; on LocalStack
    /// `eval "$(bash localstack/ctl.sh env)"` first). Uploads go to its uploads/, where the
    /// pipeline picks them up.
    #[arg(long, value_name = "NAME", conflicts_with = "data_dir")]
    bucket: Option<String>,
    /// Where to listen. Port 0 picks a free one. Default: $WEIR_SERVE_ADDR, else
    /// 127.0.0.1:8080. An address beyond loopback needs --token.
    #[arg(long, value_name = "ADDR:PORT")]
    addr: Option<SocketAddr>,
    /// The web app's browser bundle (DIR/pkg/weir-web.js and weir-web_bg.wasm, built by
    /// scripts/build-web.sh). Default: ~/.local/share/weir/site, where scripts/install.sh puts
    /// it. Without it the pages are served without their browser code (still usable: links
    /// and forms). $WEIR_SITE gives it too.
    #[arg(long, value_name = "DIR")]
    site: Option<PathBuf>,
    /// The largest capture the browser (or POST /api/uploads) may upload, in bytes; uploads
    /// are stored under DIR/uploads/ and analyzed in this process.
    #[arg(long, default_value_t = weir_api::MAX_UPLOAD, value_name = "BYTES")]
    max_upload: usize,
    /// Require this bearer token on every request (`Authorization: Bearer TOKEN`). A browser
    /// signs in once at /login (or opens a page with ?token=TOKEN, taken out of the address at
    /// once) and gets a session cookie for 12 hours; /logout ends it. At least 16 characters
    /// (`openssl rand -hex 16`). $WEIR_TOKEN gives it too (better: it stays out of the
    /// process list). Needed to listen beyond loopback.
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Also answer requests for this host name (repeatable), e.g. a name in /etc/hosts for
    /// this machine. Without a token weir serve answers only to the loopback names
    /// (localhost, 127.0.0.1, [::1]) and the address it listens on, so that a web page
    /// elsewhere whose name is made to point here (DNS rebinding) reads nothing.
    #[arg(long, value_name = "NAME")]
    allow_host: Vec<String>,
    /// Serve HTTPS with this certificate chain (PEM; with --tls-key). Anything beyond
    /// loopback should: the token and the session cookie then never cross the network in
    /// clear, and the cookie is marked Secure.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Append who did what to FILE, one JSON line per request (time, who: bearer, session or
    /// open, method, path and query with any token blanked, status, ms): an access log to keep.
    #[arg(long, value_name = "FILE")]
    access_log: Option<PathBuf>,
    /// Follow a federated-learning registry directory (`weir fl init`): uploads are
    /// classified by its current version, picked up without a restart (checked: the
    /// pointer's signature when $WEIR_REGISTRY_PUBKEY is set, the SHA-256, the same features
    /// and classes). With --bucket the pipeline's functions follow the registry instead
    /// (WEIR_MODEL_REGISTRY=bucket).
    #[arg(long, value_name = "DIR", conflicts_with = "bucket")]
    registry: Option<PathBuf>,
}

/// The bundle to serve: the one given, else the installed one, if it is there.
fn site(given: Option<PathBuf>) -> Option<PathBuf> {
    let dir = given
        .or_else(|| std::env::var_os("WEIR_SITE").map(PathBuf::from))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/weir/site"))
        })?;
    let js = dir
        .join("pkg")
        .join(format!("{}.js", weir_web::OUTPUT_NAME));
    js.is_file().then_some(dir)
}

pub fn serve(args: ServeArgs) -> Result<i32> {
    let addr: SocketAddr = match (args.addr, std::env::var("WEIR_SERVE_ADDR")) {
        (Some(a), _) => a,
        (None, Ok(s)) if !s.is_empty() => s
            .parse()
            .with_context(|| format!("WEIR_SERVE_ADDR={s:?} is not an ADDR:PORT"))?,
        _ => SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    let dir = &args.data_dir;
    if args.bucket.is_none() && !dir.is_dir() {
        bail!(
            "{}: no such directory: give the --data-dir that `weir analyze` wrote to (default weir-data), or --bucket NAME",
            dir.display()
        );
    }
    let token = match (args.token.clone(), std::env::var("WEIR_TOKEN")) {
        (Some(t), _) => Some(t),
        (None, Ok(t)) if t.is_empty() => bail!(
            "WEIR_TOKEN is set but empty: give the token (at least {} characters; \
             `openssl rand -hex 16` makes one), or unset WEIR_TOKEN to serve loopback without one",
            weir_api::MIN_TOKEN
        ),
        (None, Ok(t)) => Some(t),
        (None, Err(_)) => None,
    };
    if let Some(t) = &token {
        weir_api::check_token(t).map_err(|e| anyhow::anyhow!("weir serve: {e}"))?;
    }
    if !addr.ip().is_loopback() && token.is_none() {
        bail!(
            "{addr}: beyond loopback weir serve needs a token (--token or WEIR_TOKEN): without \
             one anybody who reaches {addr} reads and uploads captures; or listen on 127.0.0.1:PORT"
        );
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(weir_api::listen::tls_config(c, k).map_err(anyhow::Error::msg)?),
        _ => None,
    };
    let tls_on = tls.is_some();
    let scheme = if tls_on { "https" } else { "http" };
    let site = site(args.site.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // The store, and where `weir analyze`'s capture paths are relative to (a data directory:
    // usually the directory it is in). S3Store blocks on the runtime: it is only ever called
    // from blocking threads.
    let (store, beside, place): (Arc<dyn weir_pipeline::Store>, _, String) = match &args.bucket {
        Some(bucket) => {
            let clients = rt.block_on(weir_aws::clients());
            let store = weir_aws::S3Store::new(clients.s3, bucket, rt.handle().clone());
            weir_pipeline::Store::children(&store, "captures/").with_context(|| {
                format!(
                    "reading s3://{bucket}: is the bucket right, and are the AWS variables set? \
                     On LocalStack: eval \"$(bash localstack/ctl.sh env)\""
                )
            })?;
            (Arc::new(store), None, format!("s3://{bucket}"))
        }
        None => {
            let beside = std::path::absolute(dir)
                .ok()
                .and_then(|d| d.parent().map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("."));
            (
                Arc::new(LocalStore::new(dir)),
                Some(beside),
                dir.display().to_string(),
            )
        }
    };
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (in use? try --addr 127.0.0.1:0)"))?;
        let at = listener.local_addr()?;
        eprintln!(
            "weir serve: the results in {place} at {scheme}://{at}/ (JSON API: {scheme}://{at}/api/openapi.json); Ctrl-C stops it"
        );
        if site.is_none() {
            eprintln!(
                "weir serve: no browser bundle found (scripts/build-web.sh builds it; --site DIR): \
                 serving the pages without their browser code"
            );
        }
        let mut flows =
            weir_api::Flows::new(store, beside, Arc::new(weir_classify::shipped_cpu_model));
        if let Some(reg) = &args.registry {
            let opts = weir_classify::Options {
                device: weir_classify::Device::Cpu,
                threads: 1,
                ..weir_classify::Options::default()
            };
            let load = weir_classify::loader(opts);
            flows = flows.following(crate::analyze::registry_reloader(
                reg,
                Box::new(move |b| {
                    load(b).map(|c| Box::new(c) as Box<dyn weir_model::FlowModel>)
                }),
            )?);
            eprintln!(
                "weir serve: uploads are classified by the current version of the registry in {}",
                reg.display()
            );
        }
        let flows = Arc::new(flows);
        let uploads = if args.bucket.is_some() {
            weir_api::Uploads::to_pipeline(flows.clone(), args.max_upload)
        } else {
            weir_api::Uploads::new(flows.clone(), args.max_upload)
        };
        let mut hosts = args.allow_host.clone();
        hosts.push(match at.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        });
        let mut ops = weir_api::Ops::new(flows.store.clone(), token.clone())
            .allow_hosts(Some(hosts))
            .tls(tls_on);
        if let Some(path) = &args.access_log {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot append to the access log {}", path.display()))?;
            ops = ops.access_log(f);
        }
        let ops = Arc::new(ops);
        let app = weir_web::server::router(flows, Some(Arc::new(uploads)), site);
        let app = weir_api::operated(app, ops);
        if token.is_some() {
            eprintln!("weir serve: every request needs the token: sign in at {scheme}://{at}/login in a browser (or open any page once with ?token=TOKEN), or send `Authorization: Bearer TOKEN`");
        }
        weir_api::listen::serve(listener, app, tls, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")
    })?;
    Ok(0)
}
