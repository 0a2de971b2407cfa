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

#[component]
fn DashboardView(d: Dashboard) -> impl IntoView {
    let c = d.capture.clone();
    let s = d.summary.clone().unwrap_or_default();
    let id = c.capture.clone();
    let in_capture = |q: String| {
        search_href(&SearchArgs {
            q,
            capture: id.clone(),
            ..Default::default()
        })
    };
    let mut classes: Vec<(String, u64)> = s.classes.clone().into_iter().collect();
    classes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let class_items: Vec<Item> = classes
        .iter()
        .map(|(k, n)| Item {
            label: k.clone(),
            value: *n,
            marked: if k == weir_wire::Class::Normal.name() {
                0
            } else {
                *n
            },
            href: Some(in_capture(refine("", "class", k, false))),
        })
        .collect();
    let timeline: Vec<(String, u64, u64)> = s
        .timeline
        .iter()
        .map(|b| (b.key.clone(), b.flows, b.alerts))
        .collect();
    let hosts = |list: &[weir_wire::summary::Tally], field: &str| -> Vec<Item> {
        list.iter()
            .map(|h| Item {
                label: h.key.clone(),
                value: h.flows,
                marked: h.alerts,
                href: Some(in_capture(refine("", field, &h.key, false))),
            })
            .collect()
    };
    let (talkers, targets) = (
        hosts(&s.top_sources, "src"),
        hosts(&s.top_destinations, "dst"),
    );
    let services: Vec<Item> = s
        .top_services
        .iter()
        .map(|v| Item {
            label: v.service.clone(),
            // Flows on either side, as the summary ranks services and counts their alerts.
            value: v.flows_to + v.flows_from,
            marked: v.alerts,
            href: Some(in_capture(match v.port {
                Some(port) => format!("proto {} and port {port}", v.proto),
                None => format!("proto {}", v.proto),
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
    for g in &s.alert_groups {
        for a in &g.attackers {
            for v in &g.victims {
                edges.push((a.clone(), v.clone(), g.class.clone(), g.flows));
            }
        }
    }
    let groups = s
        .alert_groups
        .iter()
        .map(|g| {
            let line = g.line.clone();
            view! { <li>{line}</li> }
        })
        .collect_view();
    let exports = [("CSV", "csv"), ("JSON Lines", "jsonl")]
        .map(|(label, f)| {
            let href = format!("/api/export?capture={}&format={f}", encode(&c.capture));
            view! { <a href=href rel="external" download="">{label}</a>" " }
        })
        .collect_view();
    let eve = format!("/api/alerts.eve?capture={}", encode(&c.capture));
    view! {
        <h1>{c.capture.clone()}</h1>
        <p class="facts">
            <span class=format!("badge {}", c.state.name())>{c.state.name()}</span>
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
