//! Federated learning: the registry's versions and the rounds.

use super::*;

#[component]
pub(super) fn FederationPage() -> impl IntoView {
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
