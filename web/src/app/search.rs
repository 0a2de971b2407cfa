//! The search page: the query form, the time histogram and the flow table.

use super::*;
use weir_wire::columns as col;

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
pub(super) fn SearchPage() -> impl IntoView {
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
    (col::FIRST_TS, "first packet", None),
    ("capture", "capture", None),
    (col::PROTO, col::PROTO, Some(col::PROTO)),
    (col::SRC_IP, "source", Some("src")),
    (col::SRC_PORT, "sport", Some("sport")),
    (col::DST_IP, "destination", Some("dst")),
    (col::DST_PORT, "dport", Some("dport")),
    (col::PACKETS_FWD, "packets", None),
    (col::BYTES_FWD, "bytes", None),
    (col::CLASS, col::CLASS, Some(col::CLASS)),
    (col::CLASS_PROBABILITY, "p", None),
    (col::ANOMALY, col::ANOMALY, None),
    (col::COMMUNITY_ID, "Community ID", Some("cid")),
];

#[component]
fn FlowTable(rows: Vec<FlowRow>, args: SearchArgs) -> impl IntoView {
    let head = COLUMNS
        .iter()
        .map(|(col, label, _)| {
            let mut s = args.clone();
            let on = s.sort == *col || (s.sort.is_empty() && *col == col::FIRST_TS);
            s.desc = if on {
                !args.desc
            } else {
                matches!(
                    *col,
                    col::CLASS_PROBABILITY | col::ANOMALY | col::PACKETS_FWD | col::BYTES_FWD
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
