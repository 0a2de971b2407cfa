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

mod captures;
mod dashboard;
mod federation;
mod flow;
mod search;

use captures::CapturesPage;
use dashboard::DashboardPage;
use federation::FederationPage;
use flow::FlowPage;
use search::SearchPage;

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
