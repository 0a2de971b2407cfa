//! Uploads from the browser or the API into a local store, analyzed in the server's own
//! process by the pipeline's library functions (split, classify, aggregate: what the Lambda
//! functions run), one capture at a time; the captures page follows the status they write.
//!
//! | endpoint | does |
//! |---|---|
//! | `POST /api/uploads?name=FILE` | the body is the capture: 202 `{capture, status}` |
//! | `POST /upload` | the same from an HTML form (multipart field `capture`): 303 to the captures page |
//!
//! A body over the limit is a 413; a file that is not PCAP or PCAPNG a 400 that says so;
//! nothing is stored for either.

use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, Multipart, Query as QueryParams, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use weir_pipeline::{
    aggregate, capture_id, classify_shards, mark_failed, split, SplitOptions, UPLOADS,
};

use crate::{ApiError, Flows};

/// The largest upload taken by default (`weir serve --max-upload`).
pub const MAX_UPLOAD: usize = 1 << 30;

/// What uploads need: where they go and how large they may be.
pub struct Uploads {
    flows: Arc<Flows>,
    max_bytes: usize,
    analyze_here: bool,
    one_at_a_time: Arc<Mutex<()>>,
}

impl Uploads {
    /// Uploads into `flows.store` (a local store), at most `max_bytes` each, analyzed here.
    pub fn new(flows: Arc<Flows>, max_bytes: usize) -> Self {
        Uploads {
            flows,
            max_bytes,
            analyze_here: true,
            one_at_a_time: Arc::new(Mutex::new(())),
        }
    }

    /// Uploads into the functions' bucket: only stored under `uploads/`, where the bucket's
    /// notification starts the pipeline (the splitter function), as for any other upload.
    pub fn to_pipeline(flows: Arc<Flows>, max_bytes: usize) -> Self {
        Uploads {
            analyze_here: false,
            ..Uploads::new(flows, max_bytes)
        }
    }
}

/// The key an upload named `name` is stored under: `uploads/` and the file name cut to
/// `[A-Za-z0-9._-]` (no directories, no `..`).
pub fn upload_key(name: &str) -> Result<String, ApiError> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let clean = clean.trim_start_matches('.').to_string();
    if clean.is_empty() {
        return Err(ApiError::bad(format!(
            "{name:?} is not a file name: give the capture's name (name=traffic.pcap)"
        )));
    }
    Ok(format!("{UPLOADS}{clean}"))
}

/// Whether `bytes` start like a capture (PCAP in either byte order and resolution, PCAPNG).
fn looks_like_capture(bytes: &[u8]) -> bool {
    const MAGIC: [[u8; 4]; 5] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x0a, 0x0d, 0x0d, 0x0a],
    ];
    bytes.len() >= 24 && MAGIC.iter().any(|m| bytes.starts_with(m))
}

/// Store an upload and start its analysis; its capture id.
fn accept(up: &Uploads, name: &str, bytes: Vec<u8>) -> Result<String, ApiError> {
    if bytes.len() > up.max_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{name}: {} bytes is over the upload limit of {} bytes",
                bytes.len(),
                up.max_bytes
            ),
        ));
    }
    if !looks_like_capture(&bytes) {
        return Err(ApiError::bad(format!(
            "{name} is not a capture: weir reads PCAP and PCAPNG files (this one starts {:02x?})",
            &bytes[..bytes.len().min(4)]
        )));
    }
    let key = upload_key(name)?;
    let id = capture_id(&key);
    let store = up.flows.store.clone();
    store.put(&key, &bytes)?;
    if !up.analyze_here {
        return Ok(id);
    }
    let gate = up.one_at_a_time.clone();
    let flows = up.flows.clone();
    std::thread::spawn(move || {
        let _one = gate.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(reason) = analyze(&flows, &key) {
            let _ = mark_failed(store.as_ref(), &capture_id(&key), None, &reason);
        }
    });
    Ok(id)
}

/// The pipeline over one upload, in this process, with the server's current model.
fn analyze(flows: &Flows, key: &str) -> Result<(), String> {
    let store = flows.store.as_ref();
    let mut msgs = Vec::new();
    let report = split(store, key, &SplitOptions::default(), |m| {
        msgs.push(m.clone());
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    if report.is_none() {
        return Ok(());
    }
    flows.with_model(|c| {
        for r in classify_shards(store, c, &msgs) {
            r.map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    })??;
    aggregate(store, &capture_id(key)).map_err(|e| e.to_string())?;
    Ok(())
}

#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    name: String,
}

async fn raw(
    State(up): State<Arc<Uploads>>,
    QueryParams(n): QueryParams<Named>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        ApiError::new(
            e.status(),
            format!(
                "{}: {} (the limit is {} bytes)",
                n.name,
                e.body_text(),
                up.max_bytes
            ),
        )
    })?;
    let id = accepted(up, n.name, body.to_vec()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "capture": id, "status": format!("/api/captures/{id}") })),
    )
        .into_response())
}

/// A form post answers with the captures page either way: the new capture, or why not.
async fn form(State(up): State<Arc<Uploads>>, parts: Multipart) -> Response {
    match form_upload(&up, parts).await {
        Ok(id) => Redirect::to(&format!("/?uploaded={id}")).into_response(),
        Err(e) => {
            let message = e.body["error"]
                .as_str()
                .unwrap_or("the upload failed")
                .to_string();
            Redirect::to(&format!("/?upload_error={}", encode(&message))).into_response()
        }
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// [`accept`] off the async threads (the store may block).
async fn accepted(up: Arc<Uploads>, name: String, bytes: Vec<u8>) -> Result<String, ApiError> {
    crate::blocking(move || accept(&up, &name, bytes)).await
}

async fn form_upload(up: &Arc<Uploads>, mut parts: Multipart) -> Result<String, ApiError> {
    while let Some(field) = parts
        .next_field()
        .await
        .map_err(|e| ApiError::bad(format!("the upload did not arrive whole: {e}")))?
    {
        if field.name() != Some("capture") {
            continue;
        }
        let name = field.file_name().unwrap_or("").to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("{name}: {e}")))?;
        return accepted(up.clone(), name, bytes.to_vec()).await;
    }
    Err(ApiError::bad(
        "no file in the form: choose a capture (field `capture`)",
    ))
}

/// The upload routes.
pub fn router(up: Arc<Uploads>) -> Router {
    // The multipart form adds its boundaries and headers: a little room over the limit.
    let limit = up.max_bytes.saturating_add(64 * 1024);
    Router::new()
        .route("/api/uploads", post(raw))
        .route("/upload", post(form))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(up)
}
