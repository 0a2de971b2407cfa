//! The captures page: every capture with its state, upload.

use super::*;

#[component]
pub(super) fn CapturesPage() -> impl IntoView {
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
            .filter(|id| rows.iter().any(|c| &c.capture == id))
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
            let href = format!("/captures/{}", encode(&c.capture));
            let pct = c.progress();
            let state = c.state.name();
            let progress = match pct {
                Some(p) if !c.state.has_results() => Some(view! {
                    <progress max="1" value=p></progress>
                    <span class="muted">{format!(" {}/{}", c.shards_done, c.shards.unwrap_or(0))}</span>
                }),
                _ => None,
            };
            let alerts = c.alerts.map(|a| {
                let search = search_href(&SearchArgs { q: "alert true".into(), capture: c.capture.clone(), ..Default::default() });
                view! { <a href=search class={if a > 0 { "alerts" } else { "" }}>{count(a)}</a> }
            });
            view! {
                <tr class=format!("state-{}", c.state.name())>
                    <td><a href=href class="capture">{c.capture.clone()}</a><div class="muted small">{c.source.clone()}</div></td>
                    <td><span class=format!("badge {}", c.state.name())>{state}</span>{progress}</td>
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
