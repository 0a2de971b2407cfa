//! A capture's dashboard: its summary, incidents, classes, timeline and connections.

use super::*;

#[component]
pub(super) fn DashboardPage() -> impl IntoView {
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
