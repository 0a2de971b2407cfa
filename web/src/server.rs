//! The server side (feature `ssr`): what the server functions run, and the axum router that
//! `weir serve` runs (the pages, the server functions under `/ui/`, the JSON API under
//! `/api/`, the stylesheet and the browser bundle).

use std::path::PathBuf;
use std::sync::Arc;
use weir_wire::columns as col;

use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use polars::prelude::*;
use weir_api::{Flows, SearchParams, Uploads};
use weir_pipeline::{
    capture_status, captures as all_captures, rfc3339, summary_key, Status, Store,
};
use weir_records::columns::{f64s, i64s, strings, u64s};

use crate::model::*;

/// What the server functions read, given to every request.
#[derive(Clone)]
pub struct Ctx {
    /// The flow endpoints' state: the store, capture files, the explaining model.
    pub flows: Arc<Flows>,
}

/// Run `f` on the request's store, off the async threads.
pub async fn call<T: Send + 'static>(
    f: impl FnOnce(Arc<dyn Store>) -> Result<T, String> + Send + 'static,
) -> Result<T, ServerFnError> {
    call_with(move |ctx| f(ctx.flows.store.clone())).await
}

/// Run `f` with the request's [`Ctx`], off the async threads.
pub async fn call_with<T: Send + 'static>(
    f: impl FnOnce(&Ctx) -> Result<T, String> + Send + 'static,
) -> Result<T, ServerFnError> {
    let ctx = use_context::<Ctx>().ok_or_else(|| ServerFnError::new("weir serve: no store"))?;
    tokio::task::spawn_blocking(move || f(&ctx))
        .await
        .map_err(|e| ServerFnError::new(format!("the request's worker failed: {e}")))?
        .map_err(ServerFnError::new)
}

fn row_of(st: Status, store: &dyn Store) -> CaptureRow {
    let summary: Option<CaptureSummary> = st
        .state
        .has_results()
        .then(|| store.get(&summary_key(&st.capture)).ok())
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok());
    row_with(st, store, summary.as_ref())
}

/// A capture's row, with its summary already read (its times count once the capture has
/// results).
fn row_with(st: Status, store: &dyn Store, summary: Option<&CaptureSummary>) -> CaptureRow {
    let split: Option<weir_pipeline::SplitReport> = store
        .get(&weir_pipeline::split_key(&st.capture))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let times = summary.filter(|_| st.state.has_results());
    CaptureRow {
        bytes: split.map(|s| s.bytes),
        first: times.map(|s| s.first.clone()),
        last: times.map(|s| s.last.clone()),
        status: st,
    }
}

/// Every capture.
pub fn captures(store: &dyn Store) -> Result<Vec<CaptureRow>, String> {
    let all = all_captures(store).map_err(|e| e.to_string())?;
    Ok(all.into_iter().map(|st| row_of(st, store)).collect())
}

/// The federation page's data (weir_fl::status, as `/api/federation` serves it).
pub fn federation(store: &dyn Store) -> Result<FederationView, String> {
    weir_fl::status::federation(store)
        .map(|f| f.view())
        .map_err(|e| e.to_string())
}

fn checked(id: &str) -> Result<(), String> {
    let ok = weir_pipeline::is_capture_id(id);
    if ok {
        Ok(())
    } else {
        Err(format!("{MISSING}{id:?} is not a capture id"))
    }
}

/// One capture's dashboard.
pub fn dashboard(ctx: &Ctx, id: &str) -> Result<Dashboard, String> {
    checked(id)?;
    let store = ctx.flows.store.as_ref();
    let st = capture_status(store, id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{MISSING}no capture {id:?} here"))?;
    // Read once: the page shows it, and the row takes its first and last packet from it.
    let summary: Option<CaptureSummary> = match store.get(&summary_key(id)) {
        Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| format!("unreadable summary: {e}"))?),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.to_string()),
    };
    let capture = row_with(st, store, summary.as_ref());
    let mut anomaly_percentiles = vec![0u64; 20];
    let mut models = Vec::new();
    if capture.state.has_results() {
        let req = weir_search::Search {
            captures: vec![id.to_string()],
            ..Default::default()
        };
        let profile = ctx.flows.search.profile(&req).map_err(|e| e.to_string())?;
        anomaly_percentiles = profile.percentiles;
        models = profile.models;
    }
    Ok(Dashboard {
        capture,
        summary,
        anomaly_percentiles,
        models,
    })
}

fn flow_rows(df: &DataFrame) -> PolarsResult<Vec<FlowRow>> {
    if df.height() == 0 {
        return Ok(Vec::new());
    }
    let s = |c: &str| strings(df, c);
    let u = |c: &str| u64s(df, c);
    let (capture, src, dst, cid, class, model) = (
        s("capture")?,
        s(col::SRC_IP)?,
        s(col::DST_IP)?,
        s(col::COMMUNITY_ID)?,
        s(col::CLASS)?,
        s(col::MODEL_VERSION)?,
    );
    let (first, last) = (i64s(df, col::FIRST_TS)?, i64s(df, col::LAST_TS)?);
    let (shard, row, proto, sport, dport) = (
        u(col::SHARD)?,
        u(col::ROW)?,
        u(col::PROTO)?,
        u(col::SRC_PORT)?,
        u(col::DST_PORT)?,
    );
    let (pf, pb, bf, bb) = (
        u(col::PACKETS_FWD)?,
        u(col::PACKETS_BWD)?,
        u(col::BYTES_FWD)?,
        u(col::BYTES_BWD)?,
    );
    let (p, an, pct) = (
        f64s(df, col::CLASS_PROBABILITY)?,
        f64s(df, col::ANOMALY)?,
        f64s(df, col::ANOMALY_PERCENTILE)?,
    );
    let alert: Vec<bool> = df
        .column(col::ALERT)?
        .bool()?
        .iter()
        .map(|b| b.unwrap_or(false))
        .collect();
    Ok((0..df.height())
        .map(|i| FlowRow {
            capture: capture[i].clone(),
            shard: shard[i] as u32,
            row: row[i] as u32,
            first_ts: rfc3339(first[i]),
            last_ts: rfc3339(last[i]),
            proto: proto[i] as u32,
            src_ip: src[i].clone(),
            src_port: sport[i] as u32,
            dst_ip: dst[i].clone(),
            dst_port: dport[i] as u32,
            community_id: cid[i].clone(),
            packets: pf[i] + pb[i],
            bytes: bf[i] + bb[i],
            class: class[i].clone(),
            class_probability: p[i],
            alert: alert[i],
            anomaly: an[i],
            anomaly_percentile: pct[i],
            model_version: model[i].clone(),
        })
        .collect())
}

/// One page of a search; a mistake in the request is `error`, said where it is.
pub fn search_view(ctx: &Ctx, args: SearchArgs) -> Result<SearchView, String> {
    let params = SearchParams {
        q: compose(&args),
        capture: args.capture.clone(),
        from: Some(args.from.clone()),
        to: Some(args.to.clone()),
        sort: Some(args.sort.clone()),
        desc: args.desc,
        offset: args.offset,
        limit: Some(if args.limit == 0 { 100 } else { args.limit }),
    };
    let mut view = SearchView {
        args: args.clone(),
        classes: ctx.flows.classes(),
        ..Default::default()
    };
    let req = match weir_api::search_request(&params) {
        Ok((query, req)) => {
            view.canonical = query.to_string();
            req
        }
        Err(bad) => {
            view.error = Some(BadInput {
                message: bad.message,
                pointed: bad.pointed,
            });
            view.canonical = params.q;
            return Ok(view);
        }
    };
    let page = match ctx.flows.search.search(&req) {
        Ok(p) => p,
        Err(weir_search::SearchError::BadRequest(m)) => {
            view.error = Some(BadInput {
                message: m,
                pointed: None,
            });
            return Ok(view);
        }
        Err(e) => return Err(e.to_string()),
    };
    view.total = page.total;
    view.rows = flow_rows(&page.rows).map_err(|e| e.to_string())?;
    view.histogram = page
        .overview
        .histogram
        .iter()
        .map(|b| Bar {
            start: rfc3339(b.start_ns),
            end: rfc3339(b.end_ns),
            flows: b.flows,
            alerts: b.alerts,
        })
        .collect();
    view.top = page
        .overview
        .top
        .into_iter()
        .map(|(col, values)| {
            let field = weir_search::TOP_FIELDS
                .iter()
                .find(|(c, _)| *c == col)
                .map_or("", |(_, f)| f);
            (col, field.to_string(), values)
        })
        .collect();
    Ok(view)
}

fn shown(v: f64) -> String {
    if v.is_nan() {
        "unknown".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.6}")
    }
}

/// One flow in full, with its explanation.
pub fn flow(ctx: &Ctx, capture: &str, shard: u32, row: u32) -> Result<FlowDetail, String> {
    checked(capture)?;
    let store = ctx.flows.store.as_ref();
    let df = weir_search::flow_row(store, capture, shard, row).map_err(|e| match e {
        weir_search::SearchError::NotFound(m) => format!("{MISSING}{m}"),
        e => e.to_string(),
    })?;
    let mut with_ids = df.clone();
    let e = |e: PolarsError| e.to_string();
    with_ids
        .with_column(Column::new("capture".into(), [capture]))
        .map_err(e)?;
    with_ids
        .with_column(Column::new(col::SHARD.into(), [shard]))
        .map_err(e)?;
    with_ids
        .with_column(Column::new(col::ROW.into(), [row]))
        .map_err(e)?;
    let flow = flow_rows(&with_ids).map_err(e)?.pop().ok_or("no row")?;
    let u = |c: &str| u64s(&df, c).map(|v| v[0]).map_err(e);
    let mut features = Vec::new();
    let mut probabilities = Vec::new();
    for c in weir_flow::feature_columns() {
        let v = f64s(&df, c).map_err(e)?[0];
        let (about, unit, _) = weir_records::column_doc(c).unwrap_or_default();
        features.push(Named {
            name: c.to_string(),
            value: shown(v),
            unit: unit.to_string(),
            about,
        });
    }
    let classes = ctx.flows.classes();
    for col in df.get_column_names() {
        if let Some(short) = col.strip_prefix("p_") {
            let p = f64s(&df, col).map_err(e)?[0];
            let name = classes
                .iter()
                .find(|c| weir_records::probability_column(c) == col.as_str())
                .cloned()
                .unwrap_or_else(|| short.replace('_', " "));
            probabilities.push((name, p));
        }
    }
    probabilities.sort_by(|a, b| b.1.total_cmp(&a.1));
    let explanation = ctx.flows.explain(&df).map(|list| {
        list.into_iter()
            .map(|a| Attribution {
                feature: a.feature,
                value: shown(f64::from(a.value)),
                delta: f64::from(a.delta),
            })
            .collect()
    });
    let st = capture_status(store, capture)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{MISSING}no capture {capture:?} here"))?;
    let carvable = weir_pipeline::open_source(store, &st, ctx.flows.files_beside.as_deref())
        .map(|_| ())
        .map_err(|e| e.to_string());
    Ok(FlowDetail {
        flow,
        end_reason: strings(&df, col::END_REASON)
            .map_err(e)?
            .pop()
            .unwrap_or_default(),
        vlan: u(col::VLAN)? as u32,
        tunnel: df
            .column(col::TUNNEL)
            .ok()
            .and_then(|c| c.get(0).ok().and_then(|v| v.get_str().map(String::from))),
        packets_fwd: u(col::PACKETS_FWD)?,
        packets_bwd: u(col::PACKETS_BWD)?,
        bytes_fwd: u(col::BYTES_FWD)?,
        bytes_bwd: u(col::BYTES_BWD)?,
        features,
        probabilities,
        explanation,
        carvable,
    })
}

const CSS: &str = include_str!("../style/weir.css");

/// A server function call; a name that is none is a 404 in weir's words (the framework says
/// 400 and explains its macro), decided by the registry of server functions.
async fn server_fn(
    provide: impl Fn() + Clone + Send + 'static,
    req: axum::extract::Request,
) -> axum::response::Response {
    let path = req.uri().path();
    if !leptos::server_fn::axum::server_fn_paths().any(|(p, _)| p == path) {
        return missing(path);
    }
    leptos_axum::handle_server_fns_with_context(provide, req)
        .await
        .into_response()
}

fn missing(path: &str) -> axum::response::Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({
            "error": format!("no such endpoint {path:?}: the API is described at /api/openapi.json"),
        })),
    )
        .into_response()
}

/// What answers an address that is none of weir's: a JSON 404 under `/api/` and `/ui/`, else
/// a page that says so, with the way back.
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/ui/") || path.starts_with("/pkg/") {
        return missing(path);
    }
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::response::Html(NOT_FOUND_PAGE),
    )
        .into_response()
}

/// The 404 page: the app's header and one sentence, no script.
const NOT_FOUND_PAGE: &str = concat!(
    r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">"#,
    r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#,
    r#"<link rel="stylesheet" href="/weir.css"><title>weir: no such page</title></head><body>"#,
    r#"<header class="top"><a href="/" class="brand">weir</a><nav><a href="/">Captures</a>"#,
    r#"<a href="/search">Search</a><a href="/federation">Federation</a>"#,
    r#"<a href="/api/openapi.json" rel="external">API</a></nav></header><main>"#,
    r#"<h1>No such page</h1><p class="error" id="not-found">This address is not one of weir's pages: "#,
    r#"start from the <a href="/">captures</a> or <a href="/search">search</a>.</p></main></body></html>"#,
);

/// The whole app: pages, server functions, the JSON API, uploads (when given), the
/// stylesheet, and the browser bundle from `site` (`site/pkg/weir-web.js`,
/// `weir-web_bg.wasm`) when there is one.
pub fn router(flows: Arc<Flows>, uploads: Option<Arc<Uploads>>, site: Option<PathBuf>) -> Router {
    let hydrate = site.is_some();
    let options = LeptosOptions::builder()
        .output_name(crate::OUTPUT_NAME)
        .site_root(
            site.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "site".into()),
        )
        .site_pkg_dir("pkg")
        .build();
    let ctx = Ctx {
        flows: flows.clone(),
    };
    let routes = generate_route_list(crate::app::App);
    let shell_options = options.clone();
    let provide = {
        let ctx = ctx.clone();
        move || provide_context(ctx.clone())
    };
    let app: Router<LeptosOptions> = Router::new()
        .leptos_routes_with_context(&options, routes, provide.clone(), move || {
            crate::app::shell(shell_options.clone(), hydrate)
        })
        .route(
            "/ui/{*fn_name}",
            get({
                let p = provide.clone();
                move |req| server_fn(p.clone(), req)
            })
            .post({
                let p = provide.clone();
                move |req| server_fn(p.clone(), req)
            }),
        )
        .route(
            "/weir.css",
            get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    CSS,
                )
                    .into_response()
            }),
        );
    let mut app = app
        .with_state(options)
        .merge(weir_api::router_with(flows))
        .fallback(not_found);
    if let Some(up) = uploads {
        app = app.merge(weir_api::uploads_router(up));
    }
    if let Some(site) = site {
        app = app.nest_service(
            "/pkg",
            tower_http::services::ServeDir::new(site.join("pkg")),
        );
    }
    // gzip for whoever asks (the browser bundle is 2.8 MB, a search page at its limit 21 MB
    // of HTML): streamed, so an export is compressed as it goes, never held whole.
    app.layer(tower_http::compression::CompressionLayer::new())
}
