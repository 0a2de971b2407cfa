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

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
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
    /// Sessions a token was exchanged for: id → when it ends.
    sessions: Mutex<HashMap<String, Instant>>,
    /// Served over TLS: the session cookie is `Secure`.
    tls: bool,
    /// Who did what, one JSON line per request (`weir serve --access-log`).
    access_log: Option<Mutex<std::fs::File>>,
    store: Shared,
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Ops {
    /// Ops over `store`; `token`: the bearer token every request must carry, if any.
    pub fn new(store: Shared, token: Option<String>) -> Self {
        Ops {
            token: token.filter(|t| !t.is_empty()),
            hosts: Some(Vec::new()),
            sessions: Mutex::new(HashMap::new()),
            tls: false,
            access_log: None,
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

    /// Mark the session cookie `Secure` (the server speaks TLS).
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Append one JSON line per request to `file`: when, who (`bearer`, `session:ID8`, or
    /// `open` without a token), the method, the path and query (a token in it blanked), the
    /// status and the milliseconds. What an operator keeps to know who searched and exported
    /// what.
    pub fn access_log(mut self, file: std::fs::File) -> Self {
        self.access_log = Some(Mutex::new(file));
        self
    }

    /// A new session for a browser that proved it has the token.
    fn new_session(&self) -> String {
        let mut id = [0u8; 32];
        getrandom::fill(&mut id).expect("the system's random source");
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut all = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|_, end| *end > now);
        if all.len() >= MAX_SESSIONS {
            // The oldest goes: a flood of logins costs the flooder its own sessions.
            if let Some(oldest) = all
                .iter()
                .min_by_key(|(_, end)| **end)
                .map(|(k, _)| k.clone())
            {
                all.remove(&oldest);
            }
        }
        all.insert(id.clone(), now + SESSION_TTL);
        id
    }

    fn session_cookie(&self, id: &str, max_age: u64) -> HeaderValue {
        let secure = if self.tls { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
        ))
        .expect("a cookie of hex digits")
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

    /// Who the request is, or `None` when it may not pass.
    fn who(&self, req: &Request) -> Option<Who> {
        let Some(token) = &self.token else {
            return Some(Who::Open);
        };
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        if bearer.is_some_and(|t| same(t.as_bytes(), token.as_bytes())) {
            return Some(Who::Bearer);
        }
        if let Some(id) = session_of(req) {
            let now = Instant::now();
            let all = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            if all.get(&id).is_some_and(|end| *end > now) {
                return Some(Who::Session(id));
            }
        }
        if query_token(req).is_some_and(|t| same(t.as_bytes(), token.as_bytes())) {
            return Some(Who::Query);
        }
        None
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
    // A browser that says where a request comes from (Sec-Fetch-Site, which no page can set)
    // is believed; `Origin` decides only for one that does not (it is `null` on a form post
    // from a page whose referrer policy hides the referrer).
    if let Some(site) = text("sec-fetch-site") {
        if matches!(site, "same-origin" | "none") {
            return None;
        }
        return Some(format!(
            "a {m} from another site (Sec-Fetch-Site: {site}) is refused: weir serve takes \
             uploads and changes only from its own pages"
        ));
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

/// How long a session lasts after the token was given.
pub const SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// Sessions kept at once (the oldest goes first).
const MAX_SESSIONS: usize = 10_000;

/// The session cookie's name.
const SESSION_COOKIE: &str = "weir_session";

/// The shortest token taken: 16 characters (`openssl rand -hex 16` gives 32).
pub const MIN_TOKEN: usize = 16;

/// Whether `token` may guard a server: at least [`MIN_TOKEN`] characters, printable ASCII
/// without spaces (it travels in a header and a URL).
pub fn check_token(token: &str) -> Result<(), String> {
    if token.len() < MIN_TOKEN {
        return Err(format!(
            "the token is {} characters: at least {MIN_TOKEN} are needed (`openssl rand -hex 16` \
             makes one)",
            token.len()
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "the token has spaces or characters a header cannot carry: use letters, \
                    digits and punctuation (`openssl rand -hex 16` makes one)"
                .into(),
        );
    }
    Ok(())
}

/// Who a request is.
enum Who {
    /// No token is required.
    Open,
    /// `Authorization: Bearer TOKEN`.
    Bearer,
    /// A session cookie.
    Session(String),
    /// `?token=TOKEN` in the address: exchanged for a session.
    Query,
}

impl Who {
    fn name(&self) -> String {
        match self {
            Who::Open => "open".into(),
            Who::Bearer => "bearer".into(),
            Who::Session(id) => format!("session:{}", &id[..8.min(id.len())]),
            Who::Query => "token-in-address".into(),
        }
    }
}

/// The session id of the request's cookie.
fn session_of(req: &Request) -> Option<String> {
    let prefix = format!("{SESSION_COOKIE}=");
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(prefix.as_str()).map(String::from))
}

/// The path and query of a request with any `token=` blanked: what logs and redirects keep.
fn without_token(req: &Request) -> String {
    let path = req.uri().path();
    let kept: Vec<&str> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("token="))
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// Whether a browser navigates (it asks for HTML).
fn wants_html(req: &Request) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The page where a browser gives the token once (POSTed, so it stays out of the address bar
/// and history), then goes on to `next`.
fn login_page(next: &str, failed: bool) -> Response {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let note = if failed {
        "<p class=\"error\" role=\"alert\">That is not this server's token.</p>"
    } else {
        ""
    };
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>weir: sign in</title>\
         <link rel=\"stylesheet\" href=\"/weir.css\"></head><body><main><h1>weir</h1>\
         <p>This weir serve needs its token (the one it was started with: --token or WEIR_TOKEN).</p>{note}\
         <form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"next\" value=\"{}\">\
         <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"current-password\" required autofocus>\
         <button type=\"submit\" id=\"sign-in\">Sign in</button></form></main></body></html>",
        esc(next)
    );
    let status = if failed {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// A local path to go on to (never another site: `//host` and `/\\host` are refused).
fn local_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next.to_string()
    } else {
        "/".into()
    }
}

/// `/login` and `/logout`, answered before the token is asked for.
async fn sign(ops: &Ops, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path == "/logout" {
        if let Some(id) = session_of(&req) {
            ops.sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        }
        let mut res = axum::response::Redirect::to("/login").into_response();
        res.headers_mut()
            .append(header::SET_COOKIE, ops.session_cookie("", 0));
        return res;
    }
    let next_of = |q: &str| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("next="))
            .map(weir_pipeline::percent_decode)
            .unwrap_or_else(|| "/".into())
    };
    if req.method() != axum::http::Method::POST {
        return login_page(
            &local_next(&next_of(req.uri().query().unwrap_or(""))),
            false,
        );
    }
    let Ok(body) = axum::body::to_bytes(req.into_body(), 8 * 1024).await else {
        return ApiError::bad("the sign-in form is at most 8 KiB").into_response();
    };
    let form = String::from_utf8_lossy(&body);
    let token = form
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(weir_pipeline::percent_decode)
        .unwrap_or_default();
    let next = local_next(&next_of(&form));
    match &ops.token {
        Some(t) if same(token.as_bytes(), t.as_bytes()) => {
            let id = ops.new_session();
            let mut res = axum::response::Redirect::to(&next).into_response();
            res.headers_mut().append(
                header::SET_COOKIE,
                ops.session_cookie(&id, SESSION_TTL.as_secs()),
            );
            res
        }
        Some(_) => login_page(&next, true),
        None => axum::response::Redirect::to(&next).into_response(),
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
        .find_map(|kv| kv.strip_prefix("token=").map(weir_pipeline::percent_decode))
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
    let shown = without_token(&req);
    let refused = if let Some(why) = ops.wrong_host(&req) {
        Some((StatusCode::FORBIDDEN, why))
    } else if let Some(why) = cross_origin(&req) {
        Some((StatusCode::FORBIDDEN, why))
    } else {
        simple_api_post(&req).map(|why| (StatusCode::UNSUPPORTED_MEDIA_TYPE, why))
    };
    let who = ops.who(&req);
    let signing = matches!(req.uri().path(), "/login" | "/logout");
    let mut res = if let Some((status, why)) = refused {
        tracing::warn!(%method, %route, reason = %why, "refused");
        ApiError::new(status, why).into_response()
    } else if signing {
        sign(&ops, req).await
    } else {
        match &who {
            // A browser that came with ?token=: a session instead, and the token out of
            // the address bar (and so out of history and any Referer).
            Some(Who::Query) if wants_html(&req) && req.method() == axum::http::Method::GET => {
                let id = ops.new_session();
                let mut res = axum::response::Redirect::to(&shown).into_response();
                res.headers_mut().append(
                    header::SET_COOKIE,
                    ops.session_cookie(&id, SESSION_TTL.as_secs()),
                );
                res
            }
            Some(Who::Query) => {
                let id = ops.new_session();
                let mut res = next.run(req).await;
                res.headers_mut().append(
                    header::SET_COOKIE,
                    ops.session_cookie(&id, SESSION_TTL.as_secs()),
                );
                res
            }
            Some(_) => next.run(req).await,
            None if wants_html(&req) && req.method() == axum::http::Method::GET => {
                let to = format!("/login?next={}", crate::uploads::encode(&shown));
                axum::response::Redirect::to(&to).into_response()
            }
            None => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this weir serve needs its token: send `Authorization: Bearer TOKEN`, or sign in \
                 at /login in a browser",
            )
            .into_response(),
        }
    };
    protect(res.headers_mut());
    let status = res.status().as_u16();
    let secs = t0.elapsed().as_secs_f64();
    ops.record(&method, route.clone(), status, secs);
    let who = who.map_or_else(|| "anonymous".to_string(), |w| w.name());
    tracing::info!(%method, %route, status, %who, ms = secs * 1e3, "request");
    if let Some(log) = &ops.access_log {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let line = serde_json::json!({
            "time": weir_pipeline::rfc3339(now),
            "who": who,
            "method": method,
            "path": shown,
            "status": status,
            "ms": (secs * 1e3 * 10.0).round() / 10.0,
        });
        let mut f = log.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(f, "{line}");
    }
    res
}

/// The headers every answer carries: no framing by another site, no guessing of content
/// types, no address (with a query in it) sent to another site as a Referer, no plugins,
/// forms only to this server, and no script at all (the app's pages set their own policy,
/// which allows the scripts that carry that response's nonce, and nothing else).
fn protect(h: &mut axum::http::HeaderMap) {
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        // Its own pages keep their origin (a form post's `Origin`); no other site is told an
        // address of this one.
        ("referrer-policy", "same-origin"),
        (
            "content-security-policy",
            "default-src 'self'; script-src 'none'; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'self'; object-src 'none'",
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
