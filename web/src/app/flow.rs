//! One flow: its row, why it was flagged, its packets.

use super::*;

#[component]
pub(super) fn FlowPage() -> impl IntoView {
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
