//! What running the app needs: optional bearer-token auth in front of everything, and
//! `/metrics` in Prometheus text format (requests and latencies by route and status,
//! captures by state). Every request is logged (tracing, one line: method, route, status,
//! milliseconds).
//!
//! With a token, a request must carry `Authorization: Bearer TOKEN`, or the `weir_token`
//! cookie a browser gets by opening any page once with `?token=TOKEN` (HttpOnly,
//! SameSite=Strict); anything else is a 401. `/metrics` is behind the same token.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use weir_pipeline::captures;

use crate::{ApiError, Shared};

/// Latency buckets of the request histogram, seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum_s: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Auth and metrics state.
pub struct Ops {
    token: Option<String>,
    store: Shared,
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Ops {
    /// Ops over `store`; `token`: the bearer token every request must carry, if any.
    pub fn new(store: Shared, token: Option<String>) -> Self {
        Ops {
            token: token.filter(|t| !t.is_empty()),
            store,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    fn allowed(&self, req: &Request) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let cookie = req
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix("weir_token="))
            .next();
        [bearer, cookie, query_token(req).as_deref()]
            .into_iter()
            .flatten()
            .any(|t| same(t.as_bytes(), token.as_bytes()))
    }

    fn record(&self, method: &str, route: String, status: u16, secs: f64) {
        let mut all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let s = all.entry((method.to_string(), route, status)).or_default();
        s.count += 1;
        s.sum_s += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    /// The metrics as Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP weir_http_requests_total Requests answered, by method, route and status.\n",
        );
        out.push_str("# TYPE weir_http_requests_total counter\n");
        let all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        for ((m, r, s), v) in all.iter() {
            out.push_str(&format!(
                "weir_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {}\n",
                v.count
            ));
        }
        out.push_str(
            "# HELP weir_http_request_duration_seconds Time to answer, by method and route.\n",
        );
        out.push_str("# TYPE weir_http_request_duration_seconds histogram\n");
        let mut by_route: BTreeMap<(String, String), Series> = BTreeMap::new();
        for ((m, r, _), v) in all.iter() {
            let t = by_route.entry((m.clone(), r.clone())).or_default();
            t.count += v.count;
            t.sum_s += v.sum_s;
            for i in 0..BUCKETS.len() {
                t.buckets[i] += v.buckets[i];
            }
        }
        drop(all);
        for ((m, r), v) in &by_route {
            let l = format!("method=\"{m}\",route=\"{r}\"");
            for (i, b) in BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "weir_http_request_duration_seconds_bucket{{{l},le=\"{b}\"}} {}\n",
                    v.buckets[i]
                ));
            }
            out.push_str(&format!(
                "weir_http_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}\n",
                v.count
            ));
            out.push_str(&format!(
                "weir_http_request_duration_seconds_sum{{{l}}} {}\n",
                v.sum_s
            ));
            out.push_str(&format!(
                "weir_http_request_duration_seconds_count{{{l}}} {}\n",
                v.count
            ));
        }
        out.push_str("# HELP weir_captures Captures in the store, by state.\n");
        out.push_str("# TYPE weir_captures gauge\n");
        match captures(self.store.as_ref()) {
            Ok(list) => {
                let mut by: BTreeMap<String, u64> = BTreeMap::new();
                for st in [
                    "queued",
                    "splitting",
                    "classifying",
                    "aggregating",
                    "done",
                    "failed",
                ] {
                    by.insert(st.to_string(), 0);
                }
                for c in list {
                    let s = serde_json::to_value(c.state)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default();
                    *by.entry(s).or_default() += 1;
                }
                for (s, n) in by {
                    out.push_str(&format!("weir_captures{{state=\"{s}\"}} {n}\n"));
                }
                out.push_str("weir_store_up 1\n");
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the store could not be listed");
                out.push_str("weir_store_up 0\n");
            }
        }
        out
    }
}

/// Constant-time comparison (the token's length is not secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn query_token(req: &Request) -> Option<String> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token=").map(|t| t.to_string()))
}

/// The route a path is counted under: fixed words only (ids and file names left out).
fn route_of(path: &str) -> String {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let known = match parts.as_slice() {
        [""] => "/",
        ["api", "captures"] => "/api/captures",
        ["api", "captures", _] => "/api/captures/{id}",
        ["api", "captures", _, "summary"] => "/api/captures/{id}/summary",
        ["api", "flows", _, _, _] => "/api/flows/{capture}/{shard}/{row}",
        ["api", "flows", _, _, _, "explain"] => "/api/flows/.../explain",
        ["api", "flows", _, _, _, "pcap"] => "/api/flows/.../pcap",
        ["api", x] => return format!("/api/{}", clean(x)),
        ["ui", x] => return format!("/ui/{}", clean(x)),
        ["captures", _] => "/captures/{id}",
        ["flows", ..] => "/flows/...",
        ["search"] => "/search",
        ["pkg", ..] => "/pkg/...",
        ["upload"] => "/upload",
        ["metrics"] => "/metrics",
        ["weir.css"] => "/weir.css",
        _ => "other",
    };
    known.to_string()
}

fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(40)
        .collect()
}

async fn guard(State(ops): State<Arc<Ops>>, req: Request, next: Next) -> Response {
    let t0 = Instant::now();
    let method = req.method().to_string();
    let route = route_of(req.uri().path());
    let from_query = ops.token.is_some() && query_token(&req).is_some();
    let mut res = if ops.allowed(&req) {
        next.run(req).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this weir serve needs its token: send `Authorization: Bearer TOKEN`, or open a page once with ?token=TOKEN",
        )
        .into_response()
    };
    if from_query && res.status() != StatusCode::UNAUTHORIZED {
        if let Some(t) = &ops.token {
            if let Ok(v) = HeaderValue::from_str(&format!(
                "weir_token={t}; HttpOnly; SameSite=Strict; Path=/"
            )) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
        }
    }
    let status = res.status().as_u16();
    let secs = t0.elapsed().as_secs_f64();
    ops.record(&method, route.clone(), status, secs);
    tracing::info!(%method, %route, status, ms = secs * 1e3, "request");
    res
}

async fn metrics(State(ops): State<Arc<Ops>>) -> Response {
    let o = ops.clone();
    let text = tokio::task::spawn_blocking(move || o.render())
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `app` with `/metrics`, every request counted and logged, and the token required (when
/// there is one).
pub fn operated(app: Router, ops: Arc<Ops>) -> Router {
    app.route("/metrics", get(metrics).with_state(ops.clone()))
        .layer(axum::middleware::from_fn_with_state(ops, guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_counted_without_ids() {
        assert_eq!(
            route_of("/api/flows/cap-1/0/12/pcap"),
            "/api/flows/.../pcap"
        );
        assert_eq!(route_of("/api/captures/x-1"), "/api/captures/{id}");
        assert_eq!(route_of("/captures/whatever"), "/captures/{id}");
        assert_eq!(route_of("/"), "/");
        assert_eq!(route_of("/api/se\"arch"), "/api/search");
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }
}
