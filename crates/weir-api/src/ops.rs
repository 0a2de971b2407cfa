//! What running the app needs: optional bearer-token auth in front of everything, and
//! `/metrics` in Prometheus text format (requests and latencies by route and status,
//! captures by state). Every request is logged (tracing, one line: method, route, status,
//! milliseconds).
//!
//! With a token, a request must carry `Authorization: Bearer TOKEN`, or the `weir_token`
//! cookie a browser gets by opening any page once with `?token=TOKEN` (HttpOnly,
//! SameSite=Strict); anything else is a 401. `/metrics` is behind the same token.
//!
//! Before that, what a web page elsewhere could make a browser send is refused:
//! - a request whose `Host` is not one this server answers to, when no token is required
//!   (403; DNS rebinding: a page whose name now points at 127.0.0.1 would otherwise read every
//!   flow). The names are the loopback ones (`localhost`, `*.localhost`, `127.0.0.0/8`,
//!   `[::1]`), the address listened on and any given with [`Ops::allow_hosts`];
//! - a state-changing request (anything but `GET`, `HEAD`, `OPTIONS`) from another origin: a
//!   browser says so in `Sec-Fetch-Site` (`cross-site`, `same-site`) or in an `Origin` that
//!   is not this server's (403). A client that sends neither (curl, scripts) is not a page;
//! - a `POST` to `/api/` with a content type a cross-site form may send without asking
//!   (`text/plain`, `application/x-www-form-urlencoded`, `multipart/form-data`): 415, naming
//!   the type to send.

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
    /// The `Host` names answered without a token (`None`: any).
    hosts: Option<Vec<String>>,
    store: Shared,
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Ops {
    /// Ops over `store`; `token`: the bearer token every request must carry, if any.
    pub fn new(store: Shared, token: Option<String>) -> Self {
        Ops {
            token: token.filter(|t| !t.is_empty()),
            hosts: Some(Vec::new()),
            store,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Answer requests for these `Host` names (a name or address, without the port) as well
    /// as the loopback names; `None`: for any name (behind a proxy that checks it).
    pub fn allow_hosts(mut self, hosts: Option<Vec<String>>) -> Self {
        self.hosts = hosts.map(|h| h.into_iter().map(|n| n.to_ascii_lowercase()).collect());
        self
    }

    /// Why a request's `Host` is not answered, if it is not (only without a token: with one,
    /// a page elsewhere has no token to send whatever name it uses).
    fn wrong_host(&self, req: &Request) -> Option<String> {
        let allowed = self.hosts.as_ref()?;
        if self.token.is_some() {
            return None;
        }
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
            .or_else(|| req.uri().authority().map(|a| a.to_string()));
        // A browser always names the host: a request without one is not a page's.
        let host = host?;
        let name = host_name(&host).to_ascii_lowercase();
        if is_loopback_name(&name) || allowed.contains(&name) {
            return None;
        }
        Some(format!(
            "Host {host:?} is not a name this weir serve answers to without a token (a page \
             elsewhere whose name now points here would read every flow): open it as \
             http://localhost:PORT/, or start weir serve with --allow-host {name}"
        ))
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

/// The name of a `Host` value, without its port (`[::1]:8080` is `[::1]`).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
}

/// `localhost`, `*.localhost`, an address in 127.0.0.0/8, `[::1]`.
fn is_loopback_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "[::1]"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

/// Why a request that changes something came from a page of another origin, if it did.
fn cross_origin(req: &Request) -> Option<String> {
    let m = req.method();
    if m == axum::http::Method::GET
        || m == axum::http::Method::HEAD
        || m == axum::http::Method::OPTIONS
    {
        return None;
    }
    let h = req.headers();
    let text = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return Some(format!(
                "a {m} from another site (Sec-Fetch-Site: {site}) is refused: weir serve takes \
                 uploads and changes only from its own pages"
            ));
        }
    }
    if let Some(origin) = text("origin") {
        let host = text("host").unwrap_or_default();
        let authority = origin.split_once("://").map(|(_, a)| a);
        if authority.is_none_or(|a| !a.eq_ignore_ascii_case(host)) {
            return Some(format!(
                "a {m} from origin {origin:?} is refused: weir serve takes uploads and changes \
                 only from its own pages (http://{host})"
            ));
        }
    }
    None
}

/// Why a `POST` to the API has a content type a cross-site form could send, if it has.
fn simple_api_post(req: &Request) -> Option<String> {
    if req.method() != axum::http::Method::POST || !req.uri().path().starts_with("/api/") {
        return None;
    }
    let kind = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let simple = [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ];
    simple.contains(&kind.as_str()).then(|| {
        let want = if req.uri().path() == "/api/uploads" {
            "application/octet-stream (curl: -H 'Content-Type: application/octet-stream' --data-binary @FILE)"
        } else {
            "application/json"
        };
        format!("Content-Type {kind} is refused on the API (a page elsewhere could send it): send {want}")
    })
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
    let refused = if let Some(why) = ops.wrong_host(&req) {
        Some((StatusCode::FORBIDDEN, why))
    } else if let Some(why) = cross_origin(&req) {
        Some((StatusCode::FORBIDDEN, why))
    } else {
        simple_api_post(&req).map(|why| (StatusCode::UNSUPPORTED_MEDIA_TYPE, why))
    };
    let mut res = if let Some((status, why)) = refused {
        tracing::warn!(%method, %route, reason = %why, "refused");
        ApiError::new(status, why).into_response()
    } else if ops.allowed(&req) {
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
    protect(res.headers_mut());
    let status = res.status().as_u16();
    let secs = t0.elapsed().as_secs_f64();
    ops.record(&method, route.clone(), status, secs);
    tracing::info!(%method, %route, status, ms = secs * 1e3, "request");
    res
}

/// The headers every answer carries: no framing by another site, no guessing of content
/// types, no address (with a query in it) sent on as a Referer, no plugins, forms only to
/// this server.
fn protect(h: &mut axum::http::HeaderMap) {
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
        ),
    ] {
        if !h.contains_key(name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
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

    #[test]
    fn host_names_and_loopback() {
        for (host, name) in [
            ("localhost:8080", "localhost"),
            ("[::1]:8080", "[::1]"),
            ("[::1]", "[::1]"),
            ("127.0.0.1", "127.0.0.1"),
            ("evil.example:80", "evil.example"),
        ] {
            assert_eq!(host_name(host), name);
        }
        for yes in [
            "localhost",
            "app.localhost",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
        ] {
            assert!(is_loopback_name(yes), "{yes}");
        }
        for no in [
            "evil.example",
            "localhost.evil.example",
            "10.0.0.1",
            "[::2]",
            "",
        ] {
            assert!(!is_loopback_name(no), "{no}");
        }
    }
}
