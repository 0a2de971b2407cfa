//! # weir-web
//!
//! Owns: the pages and their server functions. Must not depend on: AWS; query or pipeline logic
//! (it calls weir-search and weir-api).
//!
//! weir's web app: Leptos 0.8 pages rendered on the server (feature `ssr`, mounted by `weir
//! serve`) and hydrated in the browser (feature `hydrate`, the wasm bundle
//! `scripts/build-web.sh` builds). Every page works from its server-rendered HTML alone (links
//! and GET forms; the whole state is in the URL); hydration adds live progress, brushing the
//! time histogram and client-side navigation.
//!
//! The pages read the store only through the server functions of [`api`], which call the same
//! libraries as the JSON API (weir-search, weir-pipeline, weir-classify): no query logic lives
//! here. Attacker-controlled text (addresses, class names from a model, capture names) is
//! only ever rendered as text nodes, never as markup.

pub mod api;
pub mod app;
pub mod charts;
pub mod model;
#[cfg(feature = "ssr")]
pub mod server;

/// Where the browser bundle is served from (`/pkg/weir-web.js`, `/pkg/weir-web_bg.wasm`).
pub const OUTPUT_NAME: &str = "weir-web";

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
