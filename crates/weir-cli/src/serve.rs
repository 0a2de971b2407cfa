//! `weir serve`: the JSON API (weir-api) over a data directory, on loopback.

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
    /// Where to listen: a loopback address (the API has no authentication yet, so it is
    /// refused on any other address).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    addr: SocketAddr,
}

pub fn serve(args: ServeArgs) -> Result<i32> {
    let dir = &args.data_dir;
    if !dir.is_dir() {
        bail!(
            "{}: no such directory: give the --data-dir that `weir analyze` wrote to (default weir-data)",
            dir.display()
        );
    }
    if !args.addr.ip().is_loopback() {
        bail!(
            "{}: weir serve listens on loopback only for now (127.0.0.1:PORT or [::1]:PORT): \
             the API has no authentication yet",
            args.addr
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (in use? try --addr 127.0.0.1:0)",
                    args.addr
                )
            })?;
        let at = listener.local_addr()?;
        eprintln!(
            "weir serve: the results in {} at http://{at}/api/captures (search: \
             http://{at}/api/search?q=class%20%22Port%20Scan%22); Ctrl-C stops it",
            dir.display()
        );
        let app = weir_api::router(Arc::new(LocalStore::new(dir)));
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")
    })?;
    Ok(0)
}
