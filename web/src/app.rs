//! The pages: captures, a capture's dashboard, search, a flow, federated learning.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use leptos_router::{path, SsrMode};

use crate::api::{
    list_captures, load_dashboard, load_federation, load_flow, search_flows, upload_note,
};
use crate::charts::{Bars, Columns, Connections, Item};
use crate::model::*;

/// The HTML document around the app. `hydrate`: whether the browser bundle is there to load
/// (without it every page still works, server-rendered).
pub fn shell(options: LeptosOptions, hydrate: bool) -> impl IntoView {
    policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="stylesheet" href="/weir.css"/>
                {hydrate.then(|| view! { <HydrationScripts options/> })}
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The page's Content-Security-Policy (server side): scripts only with this response's nonce
/// (the hydration script; what it imports, `strict-dynamic`; the WebAssembly it compiles),
/// everything else from this server, style attributes for the bars, no framing, no plugins,
/// forms only to this server. A script injected into a page has no nonce and does not run.
fn policy() {
    #[cfg(feature = "ssr")]
    if let (Some(n), Some(r)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        let csp = format!(
            "default-src 'self'; script-src 'nonce-{n}' 'strict-dynamic' 'wasm-unsafe-eval'; \
             style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
        );
        if let Ok(v) = axum::http::HeaderValue::from_str(&csp) {
            r.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, v);
        }
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="weir"/>
        <Router>
            <header class="top">
                <a href="/" class="brand">"weir"</a>
                <nav>
                    <a href="/">"Captures"</a>
                    <a href="/search">"Search"</a>
                    <a href="/search?q=alert%20true&sort=class_probability&desc=true">"Alerts"</a>
                    <a href="/federation">"Federation"</a>
                    <a href="/api/openapi.json" rel="external">"API"</a>
                </nav>
            </header>
            <main>
                <Routes fallback=NoSuchPage>
                    <Route path=path!("/") view=CapturesPage ssr=SsrMode::Async/>
                    <Route path=path!("/captures/:id") view=DashboardPage ssr=SsrMode::Async/>
                    <Route path=path!("/search") view=SearchPage ssr=SsrMode::Async/>
                    <Route path=path!("/flows/:capture/:shard/:row") view=FlowPage ssr=SsrMode::Async/>
                    <Route path=path!("/federation") view=FederationPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}

/// An error from the server, as a message on the page (the server's own words, without the
/// framework's); a page whose capture or flow is not there answers 404, a failure 500.
fn failed(e: ServerFnError) -> AnyView {
    let text = match e {
        ServerFnError::ServerError(m) => m,
        e => e.to_string(),
    };
    let (missing, text) = match text.strip_prefix(MISSING) {
        Some(rest) => (true, rest.to_string()),
        None => (false, text),
    };
    #[cfg(feature = "ssr")]
    if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
        r.set_status(if missing {
            axum::http::StatusCode::NOT_FOUND
        } else {
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        });
    }
    let _ = missing;
    view! { <p class="error">{text}</p> }.into_any()
}

/// A page that is not one of weir's: said, with the way back, and a 404.
#[component]
fn NoSuchPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
        r.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="weir: no such page"/>
        <h1>"No such page"</h1>
        <p class="error" id="not-found">"This address is not one of weir's pages: start from the " <a href="/">"captures"</a> " or " <a href="/search">"search"</a> "."</p>
    }
}

fn loading() -> AnyView {
    view! { <p class="muted">"Loading..."</p> }.into_any()
}

// ---------------------------------------------------------------------------------------
// Captures

#[component]
fn CapturesPage() -> impl IntoView {
    let tick = RwSignal::new(0u32);
    let list = Resource::new(move || tick.get(), |_| list_captures());
    // Live progress: while a capture is still moving, ask again every 2 s (in the browser).
    Effect::new(move |_| {
        set_interval(
            move || {
                let moving = list
                    .get_untracked()
                    .and_then(Result::ok)
                    .is_some_and(|l| l.iter().any(|c| !c.settled()));
                if moving {
                    tick.update(|t| *t += 1);
                }
            },
            std::time::Duration::from_secs(2),
        );
    });
    let query = use_query_map();
    // Both notes come from this server, never from the address: a refusal's message by the id
    // the redirect carried, an upload's capture only when it is in the list.
    let refusal = Resource::new(
        move || query.with(|q| q.get("upload_error")),
        |id| async move {
            match id {
                Some(id) => upload_note(id).await.ok().flatten().or_else(|| {
                    Some("its reason is kept here for ten minutes and this one is not (or never was): try the upload again".into())
                }),
                None => None,
            }
        },
    );
    let note = move || {
        refusal.get().flatten().map(|e| {
            view! { <p class="error" role="alert" id="upload-error">"Upload refused: " {e}</p> }
        })
    };
    let uploaded = move |rows: &[CaptureRow]| {
        query
            .with(|q| q.get("uploaded"))
            .filter(|id| rows.iter().any(|c| &c.id == id))
            .map(|id| {
                let href = format!("/captures/{}", encode(&id));
                view! { <p class="note" id="uploaded">"Uploaded: " <a href=href>{id}</a> " is being analyzed below."</p> }
            })
    };
    view! {
        <Title text="weir: captures"/>
        <h1>"Captures"</h1>
        <form class="upload" method="post" action="/upload" enctype="multipart/form-data">
            <input type="file" name="capture" id="capture-file" accept=".pcap,.pcapng,.cap,.dmp" required=""/>
            <button type="submit" id="upload">"Upload and analyze"</button>
            <span class="muted small">" PCAP or PCAPNG; analyzed here, one at a time"</span>
        </form>
        <Transition fallback=|| ()>{note}</Transition>
        <Transition fallback=loading>
            {move || list.get().map(|r| match r {
                Err(e) => failed(e),
                Ok(rows) if rows.is_empty() => view! {
                    <p class="muted">"No captures yet: run " <code>"weir analyze FILE.pcap"</code> " or upload one."</p>
                }.into_any(),
                Ok(rows) => view! { {uploaded(&rows)} <CaptureTable rows/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn CaptureTable(rows: Vec<CaptureRow>) -> impl IntoView {
    let body = rows
        .into_iter()
        .map(|c| {
            let href = format!("/captures/{}", encode(&c.id));
            let pct = c.progress();
            let state = c.state.clone();
            let progress = match pct {
                Some(p) if state != "done" => Some(view! {
                    <progress max="1" value=p></progress>
                    <span class="muted">{format!(" {}/{}", c.shards_done, c.shards.unwrap_or(0))}</span>
                }),
                _ => None,
            };
            let alerts = c.alerts.map(|a| {
                let search = search_href(&SearchArgs { q: "alert true".into(), capture: c.id.clone(), ..Default::default() });
                view! { <a href=search class={if a > 0 { "alerts" } else { "" }}>{count(a)}</a> }
            });
            view! {
                <tr class=format!("state-{}", c.state)>
                    <td><a href=href class="capture">{c.id.clone()}</a><div class="muted small">{c.source.clone()}</div></td>
                    <td><span class=format!("badge {}", c.state)>{state}</span>{progress}</td>
                    <td class="num">{c.bytes.map(size)}</td>
                    <td class="num">{count(c.flows)}</td>
                    <td class="num">{alerts}</td>
                    <td>{c.alert_classes.join(", ")}</td>
                    <td class="small">{c.first.clone()}<br/>{c.last.clone()}</td>
                    <td class="error small">{c.reason.clone()}{c.warnings.join("; ")}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="captures">
            <thead><tr>
                <th>"capture"</th><th>"state"</th><th>"size"</th><th>"flows"</th><th>"alerts"</th>
                <th>"top alert classes"</th><th>"first / last packet"</th><th>"problems"</th>
            </tr></thead>
            <tbody>{body}</tbody>
        </table>
    }
}

// ---------------------------------------------------------------------------------------
// Dashboard

#[component]
fn DashboardPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let data = Resource::new(id, load_dashboard);
    view! {
        <Title text="weir: capture"/>
        <Transition fallback=loading>
            {move || data.get().map(|r| match r {
                Err(e) => failed(e),
                Ok(d) => view! { <DashboardView d/> }.into_any(),
            })}
        </Transition>
    }
}

fn js_str(v: &serde_json::Value, k: &str) -> String {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string()
}

fn js_u64(v: &serde_json::Value, k: &str) -> u64 {
    v.get(k).and_then(|x| x.as_u64()).unwrap_or(0)
}

fn js_list<'a>(v: &'a serde_json::Value, k: &str) -> Vec<&'a serde_json::Value> {
    v.get(k)
        .and_then(|x| x.as_array())
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

#[component]
fn DashboardView(d: Dashboard) -> impl IntoView {
    let c = d.capture.clone();
    let s = d.summary.clone();
    let id = c.id.clone();
    let in_capture = |q: String| {
        search_href(&SearchArgs {
            q,
            capture: id.clone(),
            ..Default::default()
        })
    };
    let mut classes: Vec<(String, u64)> = s
        .get("classes")
        .and_then(|x| x.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    classes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let class_items: Vec<Item> = classes
        .iter()
        .map(|(k, n)| Item {
            label: k.clone(),
            value: *n,
            marked: if k == "Normal" { 0 } else { *n },
            href: Some(in_capture(refine("", "class", k, false))),
        })
        .collect();
    let timeline: Vec<(String, u64, u64)> = js_list(&s, "timeline")
        .iter()
        .map(|b| (js_str(b, "key"), js_u64(b, "flows"), js_u64(b, "alerts")))
        .collect();
    let hosts = |k: &str, field: &str| -> Vec<Item> {
        js_list(&s, k)
            .iter()
            .map(|h| Item {
                label: js_str(h, "key"),
                value: js_u64(h, "flows"),
                marked: js_u64(h, "alerts"),
                href: Some(in_capture(refine("", field, &js_str(h, "key"), false))),
            })
            .collect()
    };
    let (talkers, targets) = (
        hosts("top_sources", "src"),
        hosts("top_destinations", "dst"),
    );
    let services: Vec<Item> = js_list(&s, "top_services")
        .iter()
        .map(|v| Item {
            label: js_str(v, "service"),
            // Flows on either side, as the summary ranks services and counts their alerts.
            value: js_u64(v, "flows_to") + js_u64(v, "flows_from"),
            marked: js_u64(v, "alerts"),
            href: Some(in_capture(match v.get("port").and_then(|p| p.as_u64()) {
                Some(port) => format!("proto {} and port {port}", js_str(v, "proto")),
                None => format!("proto {}", js_str(v, "proto")),
            })),
        })
        .collect();
    let anomaly: Vec<Item> = d
        .anomaly_percentiles
        .iter()
        .enumerate()
        .map(|(i, n)| Item {
            label: format!("{}-{}", i * 5, i * 5 + 5),
            value: *n,
            marked: 0,
            href: Some(in_capture(format!("percentile >= {}", i * 5))),
        })
        .collect();
    let mut edges = Vec::new();
    for g in js_list(&s, "alert_groups") {
        let class = js_str(g, "class");
        let flows = js_u64(g, "flows");
        for a in js_list(g, "attackers") {
            for v in js_list(g, "victims") {
                edges.push((
                    a.as_str().unwrap_or("").to_string(),
                    v.as_str().unwrap_or("").to_string(),
                    class.clone(),
                    flows,
                ));
            }
        }
    }
    let groups = js_list(&s, "alert_groups")
        .iter()
        .map(|g| {
            let line = js_str(g, "line");
            view! { <li>{line}</li> }
        })
        .collect_view();
    let exports = [("CSV", "csv"), ("JSON Lines", "jsonl")]
        .map(|(label, f)| {
            let href = format!("/api/export?capture={}&format={f}", encode(&c.id));
            view! { <a href=href rel="external" download="">{label}</a>" " }
        })
        .collect_view();
    let eve = format!("/api/alerts.eve?capture={}", encode(&c.id));
    view! {
        <h1>{c.id.clone()}</h1>
        <p class="facts">
            <span class=format!("badge {}", c.state)>{c.state.clone()}</span>
            " " {count(c.flows)} " flows, "
            <a href=in_capture("alert true".into()) class="alerts">{count(c.alerts.unwrap_or(0))} " alerts"</a>
            " · " {c.first.clone()} " to " {c.last.clone()}
            " · source " <code>{c.source.clone()}</code>
            " · model " {d.models.join(", ")}
        </p>
        <p class="actions">
            <a href=in_capture(String::new())>"Search this capture"</a>
            " · export every flow: " {exports}
            " · " <a href=eve rel="external" download="">"alerts as EVE JSON"</a>
        </p>
        {c.reason.clone().map(|r| view! { <p class="error">"Failed: " {r}</p> })}
        <div class="grid">
            <section><h2>"Classes"</h2><Bars items=class_items/></section>
            <section><h2>"Flows and alerts over time"</h2><Columns values=timeline unit="flows"/></section>
            <section><h2>"Top talkers (sources)"</h2><Bars items=talkers/></section>
            <section><h2>"Top destinations"</h2><Bars items=targets/></section>
            <section><h2>"Top services (either port)"</h2><Bars items=services/></section>
            <section><h2>"Anomaly percentile (vs benign training flows)"</h2><Bars items=anomaly/></section>
            <section class="wide"><h2>"Who attacked whom"</h2><Connections edges/></section>
            <section class="wide"><h2>"Alert groups"</h2><ul class="groups">{groups}</ul></section>
        </div>
    }
}

// ---------------------------------------------------------------------------------------
// Search

fn args_of(q: &leptos_router::params::ParamsMap) -> SearchArgs {
    let get = |k: &str| q.get(k).unwrap_or_default();
    SearchArgs {
        q: get("q"),
        capture: get("capture"),
        from: get("from"),
        to: get("to"),
        sort: get("sort"),
        desc: get("desc") == "true",
        offset: get("offset").parse().unwrap_or(0),
        limit: get("limit").parse().unwrap_or(0),
        addr: get("addr"),
        side: get("side"),
        port: get("port"),
        proto: get("proto"),
        classes: q.get_all("class").unwrap_or_default(),
        min_p: get("min_p"),
        min_anomaly: get("min_anomaly"),
        cid: get("cid"),
    }
}

#[component]
fn SearchPage() -> impl IntoView {
    let query = use_query_map();
    let args = move || query.with(args_of);
    let page = Resource::new(args, search_flows);
    view! {
        <Title text="weir: search"/>
        // The form with the results: rendered again for each search (client-side navigation
        // keeps the page), with the model's classes for the class filter.
        <Transition fallback=loading>
            {move || page.get().map(|r| match r {
                Err(e) => view! { <SearchForm args=args() classes=Vec::new()/> {failed(e)} }.into_any(),
                Ok(v) => {
                    let (a, classes) = (v.args.clone(), v.classes.clone());
                    view! { <SearchForm args=a classes/> <Results v/> }.into_any()
                }
            })}
        </Transition>
    }
}

/// The search form: a GET form, so the whole search is the URL.
#[component]
fn SearchForm(args: SearchArgs, classes: Vec<String>) -> impl IntoView {
    let options = classes
        .into_iter()
        .map(|c| {
            let on = args.classes.contains(&c);
            let label = c.clone();
            view! { <option value=c selected=on>{label}</option> }
        })
        .collect_view();
    let side = |v: &'static str, label: &'static str| {
        view! { <option value=v selected=args.side == v>{label}</option> }
    };
    view! {
        <form class="search" method="get" action="/search">
            <input type="search" name="q" value=args.q.clone() size="70" autocomplete="off"
                placeholder="src 10.0.0.0/8 and class \"Port Scan\" and anomaly > 5"/>
            <input type="text" name="capture" value=args.capture.clone() placeholder="captures (all)" size="18"/>
            <input type="text" name="from" value=args.from.clone() placeholder="from (RFC 3339)" size="22"/>
            <input type="text" name="to" value=args.to.clone() placeholder="to" size="22"/>
            <button type="submit">"Search"</button>
            <div class="filters">
                <select name="side" title="which side the address is on">
                    {side("", "either side")}{side("src", "source")}{side("dst", "destination")}
                </select>
                <input type="text" name="addr" value=args.addr.clone() placeholder="IP or CIDR (v4/v6)" size="20"/>
                <input type="text" name="port" value=args.port.clone() placeholder="port" size="6"/>
                <input type="text" name="proto" value=args.proto.clone() placeholder="proto" size="6"/>
                <select name="class" multiple="" size="3" title="any of these classes (Ctrl-click for several)">{options}</select>
                <input type="text" name="min_p" value=args.min_p.clone() placeholder="min p (0-1)" size="9"/>
                <input type="text" name="min_anomaly" value=args.min_anomaly.clone() placeholder="min anomaly" size="10"/>
                <input type="text" name="cid" value=args.cid.clone() placeholder="Community ID" size="30"/>
            </div>
            <details class="help">
                <summary>"Query language"</summary>
                <p>"Terms joined by " <code>"and"</code> " (or a space), " <code>"or"</code> ", " <code>"not"</code>
                   " and parentheses. Fields: " <code>"src dst ip"</code> " (address or CIDR, IPv4/IPv6), "
                   <code>"sport dport port"</code> ", " <code>"proto"</code> " (tcp, udp, icmp or a number), "
                   <code>"class"</code> ", " <code>"p"</code> " (probability), " <code>"anomaly"</code> ", "
                   <code>"percentile"</code> ", " <code>"alert"</code> ", " <code>"cid"</code> " (Community ID), "
                   <code>"model"</code> ". Compare with " <code>"= != < <= > >="</code> "; quote values with spaces."</p>
                <p>"Examples: " <code>"ip 192.168.1.0/24 and not dport 443"</code> " · "
                   <code>"(class DDoS or class \"DoS Hulk\") and p >= 0.9"</code></p>
            </details>
        </form>
    }
}

#[component]
fn Results(v: SearchView) -> impl IntoView {
    if let Some(e) = v.error.clone() {
        return view! {
            <div class="error" role="alert">
                <p>{e.message}</p>
                {e.pointed.map(|p| view! { <pre class="pointed">{p}</pre> })}
            </div>
        }
        .into_any();
    }
    let args = v.args.clone();
    let limit = if args.limit == 0 { 100 } else { args.limit };
    let with = {
        let args = args.clone();
        move |f: &dyn Fn(&mut SearchArgs)| {
            let mut a = args.clone();
            f(&mut a);
            search_href(&a)
        }
    };
    let pager = {
        let (total, off) = (v.total, args.offset);
        let page_n = off / limit + 1;
        let pages = total.div_ceil(limit).max(1);
        let prev = (off > 0).then(|| with(&|a| a.offset = off.saturating_sub(limit)));
        let next = (off + limit < total).then(|| with(&|a| a.offset = off + limit));
        let first = (off > 0).then(|| with(&|a| a.offset = 0));
        let last = (off + limit < total).then(|| with(&|a| a.offset = (pages - 1) * limit));
        view! {
            <p class="pager">
                {first.map(|h| view! { <a href=h>"« first"</a> " " })}
                {prev.map(|h| view! { <a href=h rel="prev">"‹ previous"</a> " " })}
                <span class="pos">{format!("page {page_n} of {pages}")}</span>
                {next.map(|h| view! { " " <a href=h rel="next">"next ›"</a> })}
                {last.map(|h| view! { " " <a href=h>"last »"</a> })}
            </p>
        }
    };
    let export = |f: &str| {
        format!(
            "/api/export?q={}&capture={}&from={}&to={}&sort={}&desc={}&format={f}",
            encode(&v.canonical),
            encode(&args.capture),
            encode(&args.from),
            encode(&args.to),
            encode(&args.sort),
            args.desc
        )
    };
    let facets = v
        .top
        .iter()
        .map(|(col, field, values)| {
            let items = values
                .iter()
                .map(|(val, n)| {
                    let label = val.clone();
                    let add = with(&|a| {
                        a.q = refine(&a.q, field, val, false);
                        a.offset = 0;
                    });
                    let not = with(&|a| {
                        a.q = refine(&a.q, field, val, true);
                        a.offset = 0;
                    });
                    view! {
                        <li><a href=add class="pivot">{label}</a>" "<span class="muted">{count(*n)}</span>
                            " "<a href=not class="exclude" title="exclude">"−"</a></li>
                    }
                })
                .collect_view();
            view! { <div class="facet"><h3>{col.clone()}</h3><ul>{items}</ul></div> }
        })
        .collect_view();
    view! {
        <p class="summary">
            <strong>{count(v.total as u64)}</strong> " flows match "
            <code class="canonical">{if v.canonical.is_empty() { "everything".to_string() } else { v.canonical.clone() }}</code>
            " · export: " <a href=export("csv") rel="external" download="">"CSV"</a> " "
            <a href=export("jsonl") rel="external" download="">"JSON Lines"</a>
        </p>
        <Histogram bars=v.histogram.clone() args=args.clone()/>
        <div class="facets">{facets}</div>
        <FlowTable rows=v.rows.clone() args=args.clone()/>
        {pager}
    }
    .into_any()
}

/// The time histogram: a click on a bar searches its time range; a drag across bars (in the
/// browser) searches the range it covers.
#[component]
fn Histogram(bars: Vec<Bar>, args: SearchArgs) -> impl IntoView {
    if bars.is_empty() {
        return view! { <p class="muted">"No flows in this range."</p> }.into_any();
    }
    let max = bars.iter().map(|b| b.flows).max().unwrap_or(1).max(1) as f64;
    let drag: RwSignal<Option<(usize, usize)>> = RwSignal::new(None);
    let navigate = use_navigate();
    let bars_for_up = bars.clone();
    let args_for_up = args.clone();
    let up = move |_| {
        if let Some((a, b)) = drag.get_untracked() {
            drag.set(None);
            let (lo, hi) = (a.min(b), a.max(b));
            if lo != hi {
                let mut s = args_for_up.clone();
                s.from = bars_for_up[lo].start.clone();
                s.to = bars_for_up[hi].end.clone();
                s.offset = 0;
                navigate(&search_href(&s), Default::default());
            }
        }
    };
    let first = bars.first().map(|b| b.start.clone()).unwrap_or_default();
    let last = bars.last().map(|b| b.end.clone()).unwrap_or_default();
    let cols = bars
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let mut s = args.clone();
            s.from = b.start.clone();
            s.to = b.end.clone();
            s.offset = 0;
            let h = (100.0 * b.flows as f64 / max).max(if b.flows > 0 { 2.0 } else { 0.0 });
            let ha = 100.0 * b.alerts as f64 / max;
            let title = format!("{} to {}: {} flows, {} alerts", b.start, b.end, count(b.flows), count(b.alerts));
            let selected = move || {
                drag.get().is_some_and(|(a, z)| (a.min(z)..=a.max(z)).contains(&i))
            };
            view! {
                <a href=search_href(&s) class="hbar" class:selected=selected title=title draggable="false"
                    on:mousedown=move |ev| { ev.prevent_default(); drag.set(Some((i, i))); }
                    on:mouseenter=move |_| drag.update(|d| if let Some(d) = d { d.1 = i; })>
                    <span class="fill" style=format!("height:{h:.1}%")></span>
                    <span class="fill alert" style=format!("height:{ha:.1}%")></span>
                </a>
            }
        })
        .collect_view();
    view! {
        <div class="histogram">
            <div class="hbars" on:mouseup=up on:mouseleave=move |_| drag.set(None)>{cols}</div>
            <div class="haxis"><span>{first}</span><span>{last}</span></div>
            <p class="muted small">"Flows by first packet (alerts in red): click a bar, or drag across bars, to search that time."</p>
        </div>
    }
    .into_any()
}

/// The columns of the results table: (column, header, query field to click-filter on).
const COLUMNS: &[(&str, &str, Option<&str>)] = &[
    ("first_ts", "first packet", None),
    ("capture", "capture", None),
    ("proto", "proto", Some("proto")),
    ("src_ip", "source", Some("src")),
    ("src_port", "sport", Some("sport")),
    ("dst_ip", "destination", Some("dst")),
    ("dst_port", "dport", Some("dport")),
    ("packets_fwd", "packets", None),
    ("bytes_fwd", "bytes", None),
    ("class", "class", Some("class")),
    ("class_probability", "p", None),
    ("anomaly", "anomaly", None),
    ("community_id", "Community ID", Some("cid")),
];

#[component]
fn FlowTable(rows: Vec<FlowRow>, args: SearchArgs) -> impl IntoView {
    let head = COLUMNS
        .iter()
        .map(|(col, label, _)| {
            let mut s = args.clone();
            let on = s.sort == *col || (s.sort.is_empty() && *col == "first_ts");
            s.desc = if on {
                !args.desc
            } else {
                matches!(
                    *col,
                    "class_probability" | "anomaly" | "packets_fwd" | "bytes_fwd"
                )
            };
            s.sort = col.to_string();
            s.offset = 0;
            let arrow = if on {
                if args.desc {
                    " ▼"
                } else {
                    " ▲"
                }
            } else {
                ""
            };
            view! { <th><a href=search_href(&s) class="sort">{*label}{arrow}</a></th> }
        })
        .collect_view();
    let cell = |args: &SearchArgs, field: Option<&str>, shown: String, value: String| match field {
        None => view! { <td>{shown}</td> }.into_any(),
        Some(f) => {
            let mut add = args.clone();
            add.q = refine(&args.q, f, &value, false);
            add.offset = 0;
            let mut not = args.clone();
            not.q = refine(&args.q, f, &value, true);
            not.offset = 0;
            view! {
                <td><a href=search_href(&add) class="pivot">{shown}</a>
                    <a href=search_href(&not) class="exclude" title="exclude">"−"</a></td>
            }
            .into_any()
        }
    };
    let body = rows
        .into_iter()
        .map(|r| {
            let detail = format!("/flows/{}/{}/{}", encode(&r.capture), r.shard, r.row);
            let class_cell = cell(&args, Some("class"), r.class.clone(), r.class.clone());
            view! {
                <tr class:alert=r.alert>
                    <td><a href=detail class="flow">{r.first_ts.clone()}</a></td>
                    <td class="small">{r.capture.clone()}</td>
                    {cell(&args, Some("proto"), proto_name(r.proto), r.proto.to_string())}
                    {cell(&args, Some("src"), r.src_ip.clone(), r.src_ip.clone())}
                    {cell(&args, Some("sport"), r.src_port.to_string(), r.src_port.to_string())}
                    {cell(&args, Some("dst"), r.dst_ip.clone(), r.dst_ip.clone())}
                    {cell(&args, Some("dport"), r.dst_port.to_string(), r.dst_port.to_string())}
                    <td class="num">{count(r.packets)}</td>
                    <td class="num">{size(r.bytes)}</td>
                    {class_cell}
                    <td class="num">{format!("{:.3}", r.class_probability)}</td>
                    <td class="num">{format!("{:.2}", r.anomaly)}</td>
                    {cell(&args, Some("cid"), r.community_id.clone(), r.community_id.clone())}
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="flows">
            <thead><tr>{head}</tr></thead>
            <tbody>{body}</tbody>
        </table>
    }
}

// ---------------------------------------------------------------------------------------
// Flow

#[component]
fn FlowPage() -> impl IntoView {
    let params = use_params_map();
    let key = move || {
        params.with(|p| {
            (
                p.get("capture").unwrap_or_default(),
                p.get("shard")
                    .and_then(|s| s.parse::<u32>().ok())
                    .unwrap_or(u32::MAX),
                p.get("row")
                    .and_then(|s| s.parse::<u32>().ok())
                    .unwrap_or(u32::MAX),
            )
        })
    };
    let data = Resource::new(key, |(c, s, r)| load_flow(c, s, r));
    view! {
        <Title text="weir: flow"/>
        <Transition fallback=loading>
            {move || data.get().map(|r| match r {
                Err(e) => failed(e),
                Ok(d) => view! { <FlowView d/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn FlowView(d: FlowDetail) -> impl IntoView {
    let f = d.flow.clone();
    let cid_search = search_href(&SearchArgs {
        q: refine("", "cid", &f.community_id, false),
        ..Default::default()
    });
    let pcap = format!(
        "/api/flows/{}/{}/{}/pcap",
        encode(&f.capture),
        f.shard,
        f.row
    );
    let probs = d
        .probabilities
        .iter()
        .map(|(c, p)| {
            let w = format!("width:{:.1}%", p * 100.0);
            view! { <tr><td>{c.clone()}</td><td class="num">{format!("{p:.4}")}</td><td class="pbar"><span style=w></span></td></tr> }
        })
        .collect_view();
    let why = match d.explanation.clone() {
        Err(reason) => view! { <p class="muted">"No explanation: " {reason}</p> }.into_any(),
        Ok(list) => {
            let items = list
                .into_iter()
                .map(|a| {
                    let cls = if a.delta >= 0.0 { "toward" } else { "against" };
                    view! {
                        <tr><td>{a.feature}</td><td class="num">{a.value}</td>
                            <td class=format!("num {cls}")>{format!("{:+.4}", a.delta)}</td></tr>
                    }
                })
                .collect_view();
            view! {
                <p class="muted">"Computed by occlusion with the model that decided: each feature in turn replaced by its training mean, the flow classified again; the change in the probability of "
                    <strong>{f.class.clone()}</strong> " is the feature's effect (positive: it pushed toward this verdict). The features that moved it most:"</p>
                <table class="why"><thead><tr><th>"feature"</th><th>"value"</th><th>"effect on p"</th></tr></thead><tbody>{items}</tbody></table>
            }
            .into_any()
        }
    };
    let features = d
        .features
        .iter()
        .map(|n| view! { <tr><td>{n.name.clone()}</td><td class="num">{n.value.clone()}</td><td>{n.unit.clone()}</td><td class="small">{n.about.clone()}</td></tr> })
        .collect_view();
    view! {
        <h1>{format!("{} {}:{} → {}:{}", proto_name(f.proto), f.src_ip, f.src_port, f.dst_ip, f.dst_port)}</h1>
        <p class="facts">
            <span class={if f.alert { "badge alert" } else { "badge" }}>{f.class.clone()}</span>
            {format!(" p = {:.4} · anomaly {:.2} (percentile {:.1}) · model ", f.class_probability, f.anomaly, f.anomaly_percentile)}
            <code>{f.model_version.clone()}</code>
        </p>
        <dl class="tuple">
            <dt>"capture"</dt><dd><a href=format!("/captures/{}", encode(&f.capture))>{f.capture.clone()}</a></dd>
            <dt>"first / last packet"</dt><dd>{f.first_ts.clone()} " / " {f.last_ts.clone()}</dd>
            <dt>"packets"</dt><dd>{format!("{} forward, {} backward", count(d.packets_fwd), count(d.packets_bwd))}</dd>
            <dt>"bytes"</dt><dd>{format!("{} forward, {} backward", count(d.bytes_fwd), count(d.bytes_bwd))}</dd>
            <dt>"ended"</dt><dd>{d.end_reason.clone()}</dd>
            <dt>"VLAN / tunnel"</dt><dd>{d.vlan} " / " {d.tunnel.clone().unwrap_or_else(|| "none".into())}</dd>
            <dt>"Community ID"</dt><dd><a href=cid_search class="pivot">{f.community_id.clone()}</a></dd>
        </dl>
        <p class="actions">
            {match d.carvable.clone() {
                Ok(()) => view! { <a href=pcap rel="external" download="" class="button" id="pcap">"Download this flow's packets (PCAP)"</a> }.into_any(),
                Err(why) => view! { <span class="muted">"Packets not available: " {why}</span> }.into_any(),
            }}
        </p>
        <div class="grid">
            <section><h2>"Why"</h2>{why}</section>
            <section><h2>"Class probabilities"</h2><table class="probs"><tbody>{probs}</tbody></table></section>
            <section class="wide"><h2>"Features"</h2>
                <table class="features"><thead><tr><th>"feature"</th><th>"value"</th><th>"unit"</th><th>"what it is"</th></tr></thead>
                <tbody>{features}</tbody></table></section>
        </div>
    }
}

// ---------------------------------------------------------------------------------------
// Federation

#[component]
fn FederationPage() -> impl IntoView {
    let fed = Resource::new(|| (), |_| load_federation());
    view! {
        <Title text="weir: federation"/>
        <h1>"Federated learning"</h1>
        <Suspense fallback=loading>
            {move || fed.get().map(|r| match r {
                Err(e) => failed(e),
                Ok(f) => federation_view(f),
            })}
        </Suspense>
    }
}

fn federation_view(f: FederationView) -> AnyView {
    let Some(cur) = f.current.clone() else {
        return view! {
            <p class="muted" id="no-registry">"No model registry here: start one with "
                <code>"weir fl init"</code> " (docs/FEDERATED.md)."</p>
        }
        .into_any();
    };
    let f1 = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v));
    let versions = f
        .versions
        .into_iter()
        .map(|v| {
            let excluded = v
                .excluded
                .iter()
                .map(|(n, why)| view! { <li><b>{n.clone()}</b> ": " {why.clone()}</li> })
                .collect_view();
            view! {
                <tr class="version">
                    <td class="num">{v.version}</td>
                    <td class="num">{v.round.map_or("-".to_string(), |r| r.to_string())}</td>
                    <td>{v.made_by}</td>
                    <td>{v.included.join(", ")}</td>
                    <td class="num">{count(v.samples)}</td>
                    <td><ul class="plain">{excluded}</ul></td>
                    <td class="num">{match v.macro_f1 {
                        Some(m) => format!("{} (base {})", f1(Some(m)), f1(v.base_macro_f1)),
                        None => "not gated (no evaluation set)".to_string(),
                    }}</td>
                </tr>
            }
        })
        .collect_view();
    let rounds = f
        .rounds
        .into_iter()
        .map(|r| {
            let accepted = r
                .accepted
                .iter()
                .map(|(n, s, norm)| view! { <li>{n.clone()} " (" {count(*s)} " flows, norm " {format!("{norm:.2}")} ")"</li> })
                .collect_view();
            let refused = r
                .refused
                .iter()
                .map(|(n, why)| view! { <li class="refused"><b>{n.clone()}</b> ": " {why.clone()}</li> })
                .collect_view();
            let outcome = match r.version {
                Some(v) => format!("{} version {v}", r.outcome),
                None => r.outcome.clone(),
            };
            view! {
                <tr class="round">
                    <td class="num">{r.round}</td>
                    <td>{outcome}</td>
                    <td><ul class="plain">{accepted}</ul></td>
                    <td><ul class="plain">{refused}</ul></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p id="current">"Serving version " <b>{cur.version}</b> " (" {cur.reason} "); round "
            {cur.round} " open. " {match f.nodes.len() {
                0 => "No node registered yet (weir fl register).".to_string(),
                1 => format!("1 node registered: {}.", f.nodes[0]),
                n => format!("{n} nodes registered: {}.", f.nodes.join(", ")),
            }}</p>
        <h2>"Versions"</h2>
        <table class="flows" id="versions">
            <thead><tr><th>"version"</th><th>"round"</th><th>"made by"</th><th>"nodes included"</th>
                <th>"flows"</th><th>"updates excluded, and why"</th><th>"macro-F1 (eval set)"</th></tr></thead>
            <tbody>{versions}</tbody>
        </table>
        <h2>"Rounds"</h2>
        <table class="flows" id="rounds">
            <thead><tr><th>"round"</th><th>"outcome"</th><th>"accepted"</th><th>"refused, and why"</th></tr></thead>
            <tbody>{rounds}</tbody>
        </table>
    }
    .into_any()
}
