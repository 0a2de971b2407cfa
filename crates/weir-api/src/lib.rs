//! # weir-api
//!
//! Owns: the HTTP surface over results (routes, errors, uploads, exports, the request guard).
//! Must not depend on: an inference runtime (the model comes in as a `ModelSource`), AWS (the
//! store is a trait object).
//!
//! weir's JSON API over a [`Store`] of results (a `weir analyze` data directory or the
//! functions' bucket): the axum [`router`] that `weir serve` runs and the web app mounts.
//!
//! | endpoint | returns |
//! |---|---|
//! | `GET /api/captures` | every capture's status (as `weir status --json`) |
//! | `GET /api/captures/{id}` | one capture's status; 404 when there is none |
//! | `GET /api/captures/{id}/summary` | its summary (`summary.json`); 404 until aggregated |
//! | `GET /api/search?q=&capture=&from=&to=&sort=&desc=&offset=&limit=` | one page of flows |
//! | `GET /api/export?...&format=csv\|jsonl` | every matching flow, not capped, as a download |
//! | `GET /api/alerts.eve?...` | the alerts among them as Suricata EVE JSON lines |
//! | `POST` to any of these three | the same, the parameters as a JSON object (`application/json`): for a query longer than an address can carry (an IOC list of 10,000 addresses) |
//! | `GET /api/openapi.json` | this API as an OpenAPI 3.1 document ([`OPENAPI`]) |
//!
//! Every error is JSON `{"error": "..."}` with a 4xx status that says what to change (a
//! query's parse error also gives `at` and `pointed`, the query with a caret under the
//! mistake); a 500 only when the store itself fails. Capture ids are checked against what
//! ids can be (`[A-Za-z0-9._-]`, no `..`) before any key is built from them.

use std::sync::Arc;
use weir_wire::columns as col;

mod flows;
pub mod listen;
mod ops;
mod uploads;
pub use flows::{Attribution, Flows, ModelSource, EXPLAINED};
pub use ops::{check_token, operated, Ops, MIN_TOKEN, SESSION_TTL};
pub use uploads::{
    content_digest, content_key, router as uploads_router, upload_key, upload_note, Uploads,
    MAX_CONCURRENT, MAX_UPLOAD,
};

use axum::extract::rejection::JsonRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query as QueryParams, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use polars::prelude::*;
use serde::Deserialize;
use serde_json::{json, Map, Value as Js};
use weir_pipeline::{
    capture_status, captures, rfc3339, summary_key, PipelineError, Store, StoreFault,
};
use weir_search::{Query, Search, SearchError, Searcher};

/// The store the API reads.
pub type Shared = Arc<dyn Store>;

/// The API's routes over `store` (the flow endpoints read capture files beside
/// `files_beside` too: see [`Flows`]).
pub fn router(store: Shared, model: ModelSource) -> Router {
    router_with(Arc::new(Flows::new(store, None, model)))
}

/// The API's routes, the flow endpoints with `flows`.
pub fn router_with(flows: Arc<Flows>) -> Router {
    let store = flows.store.clone();
    let searches = Router::new()
        .route("/api/search", get(find).post(find_posted))
        .route("/api/export", get(export).post(export_posted))
        .route("/api/alerts.eve", get(alerts_eve).post(alerts_eve_posted))
        // A posted search is a query of at most MAX_QUERY_BYTES and its few parameters.
        .layer(DefaultBodyLimit::max(
            weir_search::MAX_QUERY_BYTES + 64 * 1024,
        ))
        .with_state(flows.search.clone());
    let flows = flows::router(flows);
    Router::new()
        .route("/api/captures", get(list))
        .route("/api/captures/{id}", get(one))
        .route("/api/captures/{id}/summary", get(summary))
        .route("/api/openapi.json", get(openapi))
        .route("/api/federation", get(federation))
        .with_state(store)
        .merge(searches)
        .merge(flows)
}

/// An error as the API answers it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    pub(crate) body: Js,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl ToString) -> Self {
        ApiError {
            status,
            body: json!({ "error": message.to_string() }),
        }
    }

    pub(crate) fn bad(message: impl ToString) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn conflict(message: impl ToString) -> Self {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    fn not_found(message: impl ToString) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// The server's own failure (the store, an unreadable object): a 500.
    pub(crate) fn internal(message: impl ToString) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<weir_pipeline::StoreError> for ApiError {
    fn from(e: weir_pipeline::StoreError) -> Self {
        PipelineError::from(e).into()
    }
}

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> Self {
        match e.fault() {
            Some(StoreFault::NotFound) => ApiError::not_found(e),
            _ => ApiError::internal(e),
        }
    }
}

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::BadRequest(m) => ApiError::bad(m),
            SearchError::NotFound(m) => ApiError::not_found(m),
            SearchError::Store(e) => e.into(),
            e @ SearchError::Data { .. } => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// The API as an OpenAPI 3.1 document (a test checks real responses against it).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

/// Run blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ApiError::internal(format!(
            "the request's worker failed: {e}"
        )))
    })
}

/// A capture id as ids are made (`weir_pipeline::capture_id`, `content_id`): anything else is
/// refused before a key is built from it.
fn checked_id(id: &str) -> Result<&str, ApiError> {
    let ok = weir_pipeline::is_capture_id(id);
    if ok {
        Ok(id)
    } else {
        Err(ApiError::bad(format!(
            "{id:?} is not a capture id (letters, digits, '.', '-', '_')"
        )))
    }
}

async fn list(State(store): State<Shared>) -> Result<Json<Js>, ApiError> {
    let all = blocking(move || Ok(captures(store.as_ref())?)).await?;
    Ok(Json(serde_json::to_value(all).map_err(ApiError::internal)?))
}

/// The federation (weir_fl::status): what the web app's federation page shows.
async fn federation(State(store): State<Shared>) -> Result<Json<Js>, ApiError> {
    let f = blocking(move || {
        weir_fl::status::federation(store.as_ref()).map_err(|e| match e {
            weir_fl::RegistryError::Store(e) => ApiError::from(e),
            e => ApiError::internal(e),
        })
    })
    .await?;
    Ok(Json(serde_json::to_value(f).map_err(ApiError::internal)?))
}

async fn one(State(store): State<Shared>, Path(id): Path<String>) -> Result<Json<Js>, ApiError> {
    checked_id(&id)?;
    let st = blocking(move || {
        capture_status(store.as_ref(), &id)?
            .ok_or_else(|| ApiError::not_found(format!("no capture {id:?}")))
    })
    .await?;
    Ok(Json(serde_json::to_value(st).map_err(ApiError::internal)?))
}

async fn summary(
    State(store): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Js>, ApiError> {
    checked_id(&id)?;
    let bytes = blocking(move || match store.get(&summary_key(&id)) {
        Ok(b) => Ok(b),
        Err(e) if e.is_not_found() => Err(ApiError::not_found(format!(
            "capture {id:?} has no summary (not aggregated yet, or no such capture)"
        ))),
        Err(e) => Err(e.into()),
    })
    .await?;
    let v: Js = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal(format!("unreadable summary: {e}")))?;
    Ok(Json(v))
}

/// The search parameters of `GET /api/search`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SearchParams {
    /// The query (the query language; empty: every flow).
    #[serde(default)]
    pub q: String,
    /// Capture ids, comma-separated (empty: all).
    #[serde(default)]
    pub capture: String,
    /// Start of the time range: RFC 3339 (`2024-02-01T10:00:00Z`) or ns since the epoch.
    pub from: Option<String>,
    /// End of the time range (exclusive), as `from`.
    pub to: Option<String>,
    /// Sort column.
    pub sort: Option<String>,
    /// Sort descending.
    #[serde(default)]
    pub desc: bool,
    /// Rows to skip.
    #[serde(default)]
    pub offset: usize,
    /// Rows per page (default 100, at most 10,000).
    pub limit: Option<usize>,
}

/// A time as ns since the epoch: RFC 3339 with a zone (`Z` or `+01:00`) or an integer
/// ([`weir_pipeline::parse_rfc3339`]).
pub fn parse_time(s: &str) -> Result<i64, String> {
    match s.parse::<i64>() {
        Ok(n) => Ok(n),
        Err(_) => weir_pipeline::parse_rfc3339(s),
    }
}

/// A row of a page as JSON: numbers as numbers, timestamps in RFC 3339, text as text (never
/// markup: the client renders it as text).
fn rows_json(df: &DataFrame) -> Result<Vec<Js>, PolarsError> {
    let mut out = Vec::with_capacity(df.height());
    let cols = df.columns();
    for i in 0..df.height() {
        let mut row = Map::new();
        for c in cols {
            let v = match c.get(i)? {
                AnyValue::Null => Js::Null,
                AnyValue::Boolean(b) => Js::from(b),
                AnyValue::String(s) => Js::from(s),
                AnyValue::StringOwned(s) => Js::from(s.as_str()),
                AnyValue::UInt8(n) => Js::from(n),
                AnyValue::UInt16(n) => Js::from(n),
                AnyValue::UInt32(n) => Js::from(n),
                AnyValue::UInt64(n) => Js::from(n),
                AnyValue::Int8(n) => Js::from(n),
                AnyValue::Int16(n) => Js::from(n),
                AnyValue::Int32(n) => Js::from(n),
                AnyValue::Int64(n) => Js::from(n),
                AnyValue::Float32(x) => Js::from(f64::from(x)),
                AnyValue::Float64(x) => Js::from(x),
                AnyValue::Datetime(ns, _, _) | AnyValue::DatetimeOwned(ns, _, _) => {
                    Js::from(rfc3339(ns))
                }
                other => Js::from(other.to_string()),
            };
            row.insert(c.name().to_string(), v);
        }
        out.push(Js::Object(row));
    }
    Ok(out)
}

async fn find(
    State(searcher): State<Arc<Searcher>>,
    params: Result<QueryParams<SearchParams>, QueryRejection>,
) -> Result<Json<Js>, ApiError> {
    let QueryParams(p) = params.map_err(|e| ApiError::bad(e.body_text()))?;
    page_json(searcher, &p).await
}

/// `POST /api/search`: the parameters as a JSON object.
async fn find_posted(
    State(searcher): State<Arc<Searcher>>,
    params: Result<Json<SearchParams>, JsonRejection>,
) -> Result<Json<Js>, ApiError> {
    let Json(p) = params.map_err(json_rejected)?;
    page_json(searcher, &p).await
}

/// A JSON body that cannot be read: what to send instead.
fn json_rejected(e: JsonRejection) -> ApiError {
    ApiError::new(
        e.status(),
        format!(
            "{} (send the parameters as a JSON object with Content-Type: application/json, \
             such as {{\"q\": \"ip 10.0.0.1 or ip 10.0.0.2\", \"limit\": 100}})",
            e.body_text()
        ),
    )
}

async fn page_json(searcher: Arc<Searcher>, p: &SearchParams) -> Result<Json<Js>, ApiError> {
    let (query, req) = search_request(p)?;
    let page = blocking(move || Ok(searcher.search(&req)?)).await?;
    let rows = rows_json(&page.rows).map_err(ApiError::internal)?;
    let histogram: Vec<Js> = page
        .overview
        .histogram
        .iter()
        .map(|b| {
            json!({
                "start": rfc3339(b.start_ns),
                "end": rfc3339(b.end_ns),
                "flows": b.flows,
                "alerts": b.alerts,
            })
        })
        .collect();
    let top: Map<String, Js> = page
        .overview
        .top
        .iter()
        .map(|(field, values)| {
            let values = values
                .iter()
                .map(|(v, n)| json!({ "value": v, "flows": n }))
                .collect();
            (field.clone(), Js::Array(values))
        })
        .collect();
    Ok(Json(json!({
        "query": query.to_string(),
        "total": page.total,
        "offset": page.offset,
        "rows": rows,
        "histogram": histogram,
        "top": top,
    })))
}

/// `format` of `GET /api/export`.
#[derive(Debug, Default, Deserialize)]
pub struct ExportParams {
    /// `csv` (default) or `jsonl`.
    #[serde(default)]
    pub format: String,
}

/// The body of `POST /api/export`: the search and the format.
#[derive(Debug, Default, Deserialize)]
pub struct ExportBody {
    /// The search.
    #[serde(flatten)]
    pub search: SearchParams,
    /// `csv` (default) or `jsonl`.
    #[serde(default)]
    pub format: String,
}

/// A CSV cell: quoted when it must be; text that a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@` first) is prefixed with `'`.
fn csv_cell(v: &Js) -> String {
    match v {
        Js::Null => String::new(),
        Js::String(s) => {
            let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{s}")
            } else {
                s.clone()
            };
            if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s
            }
        }
        other => other.to_string(),
    }
}

/// A search request that cannot run: what to change, and for a mistake in the query, where.
#[derive(Clone, Debug, PartialEq)]
pub struct BadSearch {
    /// What is wrong.
    pub message: String,
    /// Byte offset of the mistake in the query.
    pub at: Option<usize>,
    /// The query with a caret under the mistake.
    pub pointed: Option<String>,
}

impl From<BadSearch> for ApiError {
    fn from(b: BadSearch) -> Self {
        let mut body = json!({ "error": b.message });
        if let (Some(at), Some(pointed)) = (b.at, b.pointed) {
            body["at"] = json!(at);
            body["pointed"] = json!(pointed);
        }
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body,
        }
    }
}

/// The search of a request's parameters (the API's and the web app's): the query parsed,
/// capture ids checked, times read.
pub fn search_request(p: &SearchParams) -> Result<(Query, Search), BadSearch> {
    let plain = |message: String| BadSearch {
        message,
        at: None,
        pointed: None,
    };
    let query = Query::parse(&p.q).map_err(|e| BadSearch {
        message: e.message.clone(),
        at: Some(e.at),
        pointed: Some(e.pointed(&p.q)),
    })?;
    let captures: Vec<String> = p
        .capture
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            checked_id(c).map(String::from).map_err(|_| {
                plain(format!(
                    "{c:?} is not a capture id (letters, digits, '.', '-', '_')"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let time = |name: &str, v: &Option<String>| -> Result<Option<i64>, BadSearch> {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| parse_time(s).map_err(|m| plain(format!("{name}: {m}"))))
            .transpose()
    };
    let req = Search {
        captures,
        query: query.clone(),
        from_ns: time("from", &p.from)?,
        to_ns: time("to", &p.to)?,
        sort: p
            .sort
            .clone()
            .filter(|s| !s.is_empty())
            .map(|s| (s, p.desc)),
        offset: p.offset,
        limit: p.limit.unwrap_or(100),
    };
    Ok((query, req))
}

/// The search request of a query string (shared by search, export and alerts). A parameter
/// of the wrong type (`limit=many`) is a 400 in JSON like every other error.
fn request(
    params: Result<QueryParams<SearchParams>, QueryRejection>,
) -> Result<(Query, Search), ApiError> {
    let QueryParams(p) = params.map_err(|e| ApiError::bad(e.body_text()))?;
    Ok(search_request(&p)?)
}

async fn export(
    State(searcher): State<Arc<Searcher>>,
    params: Result<QueryParams<SearchParams>, QueryRejection>,
    format: Result<QueryParams<ExportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let QueryParams(f) = format.map_err(|e| ApiError::bad(e.body_text()))?;
    exported(searcher, request(params)?, &f.format).await
}

/// `POST /api/export`: the search and the format as a JSON object.
async fn export_posted(
    State(searcher): State<Arc<Searcher>>,
    body: Result<Json<ExportBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) = body.map_err(json_rejected)?;
    exported(searcher, search_request(&b.search)?, &b.format).await
}

async fn exported(
    searcher: Arc<Searcher>,
    (_, req): (Query, Search),
    format: &str,
) -> Result<Response, ApiError> {
    let csv = match format {
        "" | "csv" => true,
        "jsonl" | "ndjson" => false,
        other => return Err(ApiError::bad(format!("format {other:?}: csv or jsonl"))),
    };
    let (kind, name) = if csv {
        ("text/csv; charset=utf-8", "weir-flows.csv")
    } else {
        ("application/x-ndjson", "weir-flows.jsonl")
    };
    let mut names: Option<Vec<String>> = None;
    let body = streamed(searcher, req, move |df, out| {
        let rows = rows_json(df)?;
        if !csv {
            for r in &rows {
                out.extend_from_slice(r.to_string().as_bytes());
                out.push(b'\n');
            }
            return Ok(());
        }
        let names = names.get_or_insert_with(|| {
            let n: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|n| n.to_string())
                .collect();
            out.extend_from_slice(n.join(",").as_bytes());
            out.push(b'\n');
            n
        });
        for r in &rows {
            let cells: Vec<String> = names.iter().map(|n| csv_cell(&r[n.as_str()])).collect();
            out.extend_from_slice(cells.join(",").as_bytes());
            out.push(b'\n');
        }
        Ok(())
    })
    .await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, kind.to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Rows an export renders at a time: what it holds in memory, whatever the total.
const EXPORT_PAGE: usize = 2_000;

/// A body fed from a channel as pages are rendered.
struct ChannelBody(tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>);

impl hyper::body::Body for ChannelBody {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(hyper::body::Frame::data)))
    }
}

/// Every row a search matches (export, alerts), streamed: the matches are found first (a bad
/// request is a 400 before anything is sent), then each page of [`EXPORT_PAGE`] rows is
/// rendered by `render` off the async threads and sent while the next is cut, at most two
/// pages ahead of the client. A client that goes away stops it; a failure after the first
/// byte ends the body early (the download is then incomplete, and the log says why).
async fn streamed(
    searcher: Arc<Searcher>,
    req: Search,
    mut render: impl FnMut(&DataFrame, &mut Vec<u8>) -> PolarsResult<()> + Send + 'static,
) -> Result<axum::body::Body, ApiError> {
    let mut pages = blocking(move || Ok(searcher.pages(&req)?)).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        while let Some(page) = pages.next_page(EXPORT_PAGE) {
            let mut out = Vec::new();
            let r = page
                .map_err(|e| e.to_string())
                .and_then(|df| render(&df, &mut out).map_err(|e| e.to_string()));
            let chunk = r.map(|()| axum::body::Bytes::from(out)).map_err(|e| {
                tracing::warn!(error = %e, "an export stopped early");
                std::io::Error::other(e)
            });
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                break;
            }
        }
    });
    Ok(axum::body::Body::new(ChannelBody(rx)))
}

/// Suricata's name for an IP protocol number.
fn proto_name(p: u64) -> String {
    match p {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "IPv6-ICMP".into(),
        132 => "SCTP".into(),
        n => n.to_string(),
    }
}

/// A stable signature id per class: 9,100,000 + a hash of the name (Suricata's local range
/// starts at 9,000,000), so a SIEM can key on it.
fn signature_id(class: &str) -> u64 {
    let h = class.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    9_100_000 + h % 100_000
}

/// The alerts of a search as Suricata EVE JSON lines (`event_type: alert`, the class as the
/// signature, Community ID), what a SIEM already ingests.
async fn alerts_eve(
    State(searcher): State<Arc<Searcher>>,
    params: Result<QueryParams<SearchParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    eve(searcher, request(params)?).await
}

/// `POST /api/alerts.eve`: the search as a JSON object.
async fn alerts_eve_posted(
    State(searcher): State<Arc<Searcher>>,
    params: Result<Json<SearchParams>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(p) = params.map_err(json_rejected)?;
    eve(searcher, search_request(&p)?).await
}

async fn eve(
    searcher: Arc<Searcher>,
    (query, mut req): (Query, Search),
) -> Result<Response, ApiError> {
    req.query = query.and(weir_search::Term {
        field: weir_search::Field::Alert,
        op: weir_search::Op::Eq,
        value: weir_search::Value::Bool(true),
    });
    let body = streamed(searcher, req, move |df, out| {
        for r in &rows_json(df)? {
            eve_line(r, out);
        }
        Ok(())
    })
    .await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    )
        .into_response())
}

/// One alert as a Suricata EVE JSON line.
fn eve_line(r: &Js, out: &mut Vec<u8>) {
    let class = r[col::CLASS].as_str().unwrap_or_default();
    let p = r[col::CLASS_PROBABILITY].as_f64().unwrap_or(0.0);
    let severity = if p >= 0.99 {
        1
    } else if p >= 0.9 {
        2
    } else {
        3
    };
    let eve = json!({
        "timestamp": r[col::FIRST_TS],
        "event_type": "alert",
        "src_ip": r[col::SRC_IP],
        "src_port": r[col::SRC_PORT],
        "dest_ip": r[col::DST_IP],
        "dest_port": r[col::DST_PORT],
        "proto": proto_name(r["proto"].as_u64().unwrap_or(0)),
        "community_id": r[col::COMMUNITY_ID],
        "alert": {
            "action": "allowed",
            "gid": 1,
            "signature_id": signature_id(class),
            "rev": 1,
            "signature": format!("weir {class}"),
            "category": class,
            "severity": severity,
        },
        "weir": {
            "capture": r["capture"],
            "probability": p,
            "anomaly": r["anomaly"],
            "anomaly_percentile": r[col::ANOMALY_PERCENTILE],
            "model_version": r[col::MODEL_VERSION],
            "last_ts": r[col::LAST_TS],
        },
    });
    out.extend_from_slice(eve.to_string().as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_ns() {
        assert_eq!(parse_time("0").unwrap(), 0);
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_time("2024-02-29T12:34:56.5Z").unwrap(),
            1_709_210_096_500_000_000
        );
        assert_eq!(
            parse_time("2024-02-29T13:34:56.5+01:00").unwrap(),
            1_709_210_096_500_000_000
        );
        // rfc3339 prints milliseconds.
        for ns in [0i64, 1_709_210_096_123_000_000, 946_684_799_000_000_000] {
            assert_eq!(parse_time(&rfc3339(ns)).unwrap(), ns, "{}", rfc3339(ns));
        }
        assert!(parse_time("2024-02-29T12:34:56")
            .unwrap_err()
            .contains("no time zone"));
        assert!(parse_time("yesterday").unwrap_err().contains("not a time"));
        assert!(parse_time("2024-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn ids_that_could_escape_are_refused() {
        for bad in [
            "..",
            ".",
            "a/b",
            "../etc",
            "",
            "a b",
            "x%2F..",
            &"a".repeat(200),
        ] {
            assert!(checked_id(bad).is_err(), "{bad}");
        }
        assert!(checked_id("udp_flood-fb9fadc9").is_ok());
    }
}
