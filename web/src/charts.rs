//! Charts as SVG, rendered on the server like the rest of the page (and the same in the
//! browser): labels are text nodes, so a hostile label shows as text.

use leptos::prelude::*;

/// One bar of a [`Bars`] chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub label: String,
    pub value: u64,
    /// A second, highlighted part of the bar (alerts among flows).
    pub marked: u64,
    /// Where a click on the label goes (a search).
    pub href: Option<String>,
}

/// Horizontal bars, largest first as given: a label, a bar to scale, the count.
#[component]
pub fn Bars(items: Vec<Item>, #[prop(optional)] empty: &'static str) -> impl IntoView {
    if items.is_empty() {
        return view! { <p class="muted">{if empty.is_empty() { "Nothing yet." } else { empty }}</p> }
            .into_any();
    }
    let max = items.iter().map(|i| i.value).max().unwrap_or(1).max(1) as f64;
    let row_h = 22.0;
    let h = row_h * items.len() as f64;
    let bars = items
        .into_iter()
        .enumerate()
        .map(|(i, it)| {
            let y = i as f64 * row_h;
            let w = 300.0 * it.value as f64 / max;
            let wm = 300.0 * it.marked as f64 / max;
            let label = it.label.clone();
            let label_view = match it.href {
                // Inside <g>, so the macro makes an SVG <a>: an HTML one renders no text in SVG
                // once the page is drawn in the browser.
                Some(href) => view! { <g><a href=href><text x="0" y=y + 15.0 class="label">{label}</text></a></g> }.into_any(),
                None => view! { <text x="0" y=y + 15.0 class="label">{label}</text> }.into_any(),
            };
            view! {
                <g>
                    {label_view}
                    <rect x="230" y=y + 3.0 width=w.max(1.0) height=row_h - 6.0 class="bar"></rect>
                    <rect x="230" y=y + 3.0 width=wm height=row_h - 6.0 class="bar alert"></rect>
                    <text x=236.0 + w y=y + 15.0 class="value">{crate::model::count(it.value)}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="chart bars" viewBox=format!("0 0 640 {h}") width="640" height=h role="img">
            {bars}
        </svg>
    }
    .into_any()
}

/// Vertical bars over time (flows, alerts marked) with a time axis: labels under the first
/// and last bar.
#[component]
pub fn Columns(
    values: Vec<(String, u64, u64)>,
    #[prop(optional)] unit: &'static str,
) -> impl IntoView {
    if values.is_empty() {
        return view! { <p class="muted">"Nothing yet."</p> }.into_any();
    }
    let max = values.iter().map(|v| v.1).max().unwrap_or(1).max(1) as f64;
    let n = values.len() as f64;
    let (w, h) = (640.0, 120.0);
    let bw = w / n;
    let first = values.first().map(|v| v.0.clone()).unwrap_or_default();
    let last = values.last().map(|v| v.0.clone()).unwrap_or_default();
    let cols = values
        .into_iter()
        .enumerate()
        .map(|(i, (_, flows, alerts))| {
            let x = i as f64 * bw;
            let fh = h * flows as f64 / max;
            let ah = h * alerts as f64 / max;
            view! {
                <g>
                    <rect x=x + 1.0 y=h - fh width=(bw - 2.0).max(1.0) height=fh class="bar"></rect>
                    <rect x=x + 1.0 y=h - ah width=(bw - 2.0).max(1.0) height=ah class="bar alert"></rect>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="chart columns" viewBox=format!("0 0 {w} {}", h + 34.0) width="640" height=h + 34.0 role="img">
            {cols}
            <line x1="0" y1=h x2=w y2=h class="axis"></line>
            <text x="0" y=h + 16.0 class="label">{first}</text>
            <text x=w y=h + 16.0 class="label end">{last}</text>
            <text x="0" y=h + 30.0 class="muted">{format!("max {} {unit} per bar", crate::model::count(max as u64))}</text>
        </svg>
    }
    .into_any()
}

/// Who attacked whom: attackers on the left, victims on the right, one line per alert group
/// (its class and flow count beside it).
#[component]
pub fn Connections(edges: Vec<(String, String, String, u64)>) -> impl IntoView {
    if edges.is_empty() {
        return view! { <p class="muted">"No alerting hosts."</p> }.into_any();
    }
    let mut left: Vec<String> = Vec::new();
    let mut right: Vec<String> = Vec::new();
    for (a, v, _, _) in &edges {
        if !left.contains(a) {
            left.push(a.clone());
        }
        if !right.contains(v) {
            right.push(v.clone());
        }
    }
    let gap = 34.0;
    let h = gap * left.len().max(right.len()) as f64 + 10.0;
    let y_of = |list: &[String], k: &String| {
        20.0 + gap * list.iter().position(|x| x == k).unwrap_or(0) as f64
    };
    let max = edges.iter().map(|e| e.3).max().unwrap_or(1).max(1) as f64;
    let lines = edges
        .iter()
        .map(|(a, v, class, flows)| {
            let (y1, y2) = (y_of(&left, a), y_of(&right, v));
            let width = 1.0 + 5.0 * (*flows as f64).ln_1p() / max.ln_1p();
            view! {
                <g>
                    <line x1="200" y1=y1 x2="460" y2=y2 class="edge" stroke-width=width></line>
                    <text x="330" y=(y1 + y2) / 2.0 - 4.0 class="edge-label">{format!("{class} ({})", crate::model::count(*flows))}</text>
                </g>
            }
        })
        .collect_view();
    let nodes = |list: &[String], x: f64, anchor: &'static str| {
        list.iter()
            .enumerate()
            .map(|(i, host)| {
                let y = 20.0 + gap * i as f64;
                let tx = if anchor == "end" { x - 10.0 } else { x + 10.0 };
                view! {
                    <g>
                        <circle cx=x cy=y r="6" class="node"></circle>
                        <text x=tx y=y + 4.0 class=format!("label {anchor}")>{host.clone()}</text>
                    </g>
                }
            })
            .collect_view()
    };
    let (l, r) = (nodes(&left, 200.0, "end"), nodes(&right, 460.0, "start"));
    view! {
        <svg class="chart graph" viewBox=format!("0 0 660 {h}") width="660" height=h role="img">
            {lines}
            {l}
            {r}
        </svg>
    }
    .into_any()
}
