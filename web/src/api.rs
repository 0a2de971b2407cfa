//! The server functions the pages call: on the server they run the library code (see
//! `crate::server`); in the browser they are HTTP calls to `/ui/...`.

use leptos::prelude::*;

use crate::model::{CaptureRow, Dashboard, FederationView, FlowDetail, SearchArgs, SearchView};

/// Every capture in the store.
#[server(prefix = "/ui", endpoint = "captures")]
pub async fn list_captures() -> Result<Vec<CaptureRow>, ServerFnError> {
    crate::server::call(|store| crate::server::captures(store.as_ref())).await
}

/// Why a browser upload was refused, by the id its redirect carried (`None`: an id this server
/// did not give out; the page then shows no words from the address).
#[server(prefix = "/ui", endpoint = "upload-note")]
pub async fn upload_note(id: String) -> Result<Option<String>, ServerFnError> {
    crate::server::call(move |_| Ok(weir_api::upload_note(&id))).await
}

/// One capture's dashboard.
#[server(prefix = "/ui", endpoint = "dashboard")]
pub async fn load_dashboard(id: String) -> Result<Dashboard, ServerFnError> {
    crate::server::call_with(move |ctx| crate::server::dashboard(ctx, &id)).await
}

/// One page of a search (a mistake in it is `SearchView::error`, not an `Err`).
#[server(prefix = "/ui", endpoint = "search")]
pub async fn search_flows(args: SearchArgs) -> Result<SearchView, ServerFnError> {
    crate::server::call_with(move |ctx| crate::server::search_view(ctx, args)).await
}

/// One flow in full, with why the model decided as it did.
#[server(prefix = "/ui", endpoint = "flow")]
pub async fn load_flow(capture: String, shard: u32, row: u32) -> Result<FlowDetail, ServerFnError> {
    crate::server::call_with(move |ctx| crate::server::flow(ctx, &capture, shard, row)).await
}

/// The federation: registry, versions, rounds, nodes.
#[server(prefix = "/ui", endpoint = "federation")]
pub async fn load_federation() -> Result<FederationView, ServerFnError> {
    crate::server::call(|store| crate::server::federation(store.as_ref())).await
}
