//! The JSON API through its router (the same service `weir serve` runs), over a store the
//! real pipeline filled: every endpoint, with good and bad input.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use weir_classify::Classifier;
use weir_pipeline::*;

fn shared() -> PathBuf {
    std::env::var_os("WEIR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

const KEY: &str = "uploads/portScan.pcapng";

fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let bytes =
        std::fs::read(shared().join("labeled/attacks/sgr/portScan_1_to_10000.pcapng")).unwrap();
    store.put(KEY, &bytes).unwrap();
    let mut msgs = Vec::new();
    split(&store, KEY, &SplitOptions::default(), |m| {
        msgs.push(m.clone());
        Ok(())
    })
    .unwrap();
    let mut c = Classifier::shipped_cpu().unwrap();
    for r in classify_shards(&store, &mut c, &msgs) {
        r.unwrap();
    }
    aggregate(&store, &capture_id(KEY)).unwrap();
    // One upload not started yet: listed as queued.
    store.put("uploads/later.pcap", &bytes[..100]).unwrap();
    (dir, Arc::new(store))
}

async fn get(store: &Arc<dyn Store>, uri: &str) -> (StatusCode, Value) {
    let (status, _, body) = text(store, uri).await;
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {body}"));
    (status, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_and_bad_input_gets_a_400_that_says_why() {
    let (_d, store) = store();
    let id = capture_id(KEY);

    let (s, v) = get(&store, "/api/captures").await;
    assert_eq!(s, StatusCode::OK);
    let states: Vec<(&str, &str)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["capture"].as_str().unwrap(), c["state"].as_str().unwrap()))
        .collect();
    assert!(states.contains(&(id.as_str(), "done")), "{states:?}");
    assert!(states.iter().any(|(_, st)| *st == "queued"), "{states:?}");

    let (s, v) = get(&store, &format!("/api/captures/{id}")).await;
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("done")));
    assert_eq!(v["flows"], 10_004);

    let (s, v) = get(&store, &format!("/api/captures/{id}/summary")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["flows"], 10_004);
    assert_eq!(v["alert_groups"][0]["class"], "Port Scan");

    // Search: the scanner's flows, newest anomaly first, one page of 50.
    let q = "src 192.168.1.7 and class \"Port Scan\"";
    let uri = format!(
        "/api/search?q={}&capture={id}&sort=anomaly&desc=true&limit=50",
        q.replace(' ', "%20").replace('"', "%22")
    );
    let (s, v) = get(&store, &uri).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["query"], q);
    assert!(v["total"].as_u64().unwrap() > 9_000, "{}", v["total"]);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 50);
    assert!(rows
        .iter()
        .all(|r| r["src_ip"] == "192.168.1.7" && r["class"] == "Port Scan"));
    assert!(
        rows[0]["first_ts"].as_str().unwrap().ends_with('Z'),
        "{}",
        rows[0]
    );
    let a: Vec<f64> = rows
        .iter()
        .map(|r| r["anomaly"].as_f64().unwrap())
        .collect();
    assert!(a.windows(2).all(|w| w[0] >= w[1]));
    // The time range, in RFC 3339: everything before the capture is nothing.
    let (s, v) = get(&store, "/api/search?to=2000-01-01T00:00:00Z").await;
    assert_eq!((s, v["total"].as_u64()), (StatusCode::OK, Some(0)));

    // Bad input: a 400 (or 404) with a message, never a 500.
    for (uri, status, says) in [
        ("/api/search?q=src%2010.0.0/8", 400, "not an IP address"),
        ("/api/search?q=colour%20red", 400, "unknown field"),
        ("/api/search?sort=colour", 400, "cannot sort by"),
        ("/api/search?limit=0", 400, "limit 0"),
        ("/api/search?limit=many", 400, "limit"),
        ("/api/search?from=yesterday", 400, "is not a time"),
        ("/api/search?capture=..", 400, "not a capture id"),
        ("/api/search?capture=nope-00000000", 400, "no capture"),
        ("/api/captures/..%2F..%2Fetc", 400, "not a capture id"),
        ("/api/captures/nope-00000000", 404, "no capture"),
        ("/api/captures/nope-00000000/summary", 404, "no summary"),
    ] {
        let (s, v) = get(&store, uri).await;
        assert_eq!(s.as_u16(), status, "{uri}");
        let text = v["error"].as_str().unwrap_or_default();
        assert!(text.contains(says), "{uri}: {v}");
    }
    // A parse error points at the mistake.
    let (_, v) = get(&store, "/api/search?q=src%2010.0.0/8").await;
    assert_eq!(v["at"], 4);
    assert!(
        v["pointed"].as_str().unwrap().contains("\n    ^^^^^^^^ "),
        "{v}"
    );
}

async fn text(store: &Arc<dyn Store>, uri: &str) -> (StatusCode, String, String) {
    let app = weir_api::router(store.clone(), Arc::new(weir_classify::shipped_cpu_model));
    let res = app
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let kind = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, kind, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_whole_and_alerts_read_as_eve() {
    let (_d, store) = store();
    // More rows than a page may hold: an export is not capped.
    let (_, all) = get(&store, "/api/search?limit=1").await;
    let total = all["total"].as_u64().unwrap() as usize;
    assert!(total > weir_search::MAX_LIMIT, "{total}");
    let (s, kind, csv) = text(&store, "/api/export").await;
    assert_eq!(s, StatusCode::OK);
    assert!(kind.starts_with("text/csv"), "{kind}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), total + 1, "a header and every flow");
    assert!(
        lines[0].starts_with("capture,first_ts,last_ts,proto,src_ip"),
        "{}",
        lines[0]
    );
    let (s, kind, jsonl) = text(
        &store,
        "/api/export?format=jsonl&q=class%20%22Port%20Scan%22",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(kind, "application/x-ndjson");
    let (_, scans) = get(&store, "/api/search?q=class%20%22Port%20Scan%22&limit=1").await;
    assert_eq!(
        jsonl.lines().count() as u64,
        scans["total"].as_u64().unwrap()
    );
    for l in jsonl.lines().take(100) {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["class"], "Port Scan");
    }
    let (s, _, body) = text(&store, "/api/export?format=xml").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    // EVE: one line per alert, in Suricata's shape.
    let (s, _, eve) = text(&store, "/api/alerts.eve").await;
    assert_eq!(s, StatusCode::OK);
    let (_, alerts) = get(&store, "/api/search?q=alert%20true&limit=1").await;
    assert_eq!(
        eve.lines().count() as u64,
        alerts["total"].as_u64().unwrap()
    );
    let first: Value = serde_json::from_str(eve.lines().next().unwrap()).unwrap();
    assert_eq!(first["event_type"], "alert");
    assert_eq!(first["proto"], "TCP");
    assert_eq!(first["alert"]["category"], "Port Scan");
    assert_eq!(first["alert"]["signature"], "weir Port Scan");
    assert!(first["community_id"].as_str().unwrap().starts_with("1:"));
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
}

/// Whether `v` fits `schema` (the subset of JSON Schema the document uses: type (or a list
/// of types), required, properties, items, enum, $ref into components); the path of the first
/// misfit otherwise.
fn fits(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let mut s = doc;
        for part in r.trim_start_matches("#/").split('/') {
            s = &s[part];
        }
        return fits(doc, s, v, at);
    }
    let kind = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    };
    let ok = match &schema["type"] {
        Value::String(t) => kind(t),
        Value::Array(ts) => ts.iter().any(|t| kind(t.as_str().unwrap())),
        _ => true,
    };
    if !ok {
        return Err(format!("{at}: {v} is not {}", schema["type"]));
    }
    if let Some(e) = schema["enum"].as_array() {
        if !e.contains(v) {
            return Err(format!("{at}: {v} not in {e:?}"));
        }
    }
    for r in schema["required"].as_array().into_iter().flatten() {
        let k = r.as_str().unwrap();
        if v.get(k).is_none() {
            return Err(format!("{at}: no {k}"));
        }
    }
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), v.as_object()) {
        for (k, s) in props {
            if let Some(x) = obj.get(k) {
                fits(doc, s, x, &format!("{at}.{k}"))?;
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            fits(doc, items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_responses_fit_the_openapi_document() {
    let (_d, store) = store();
    let (s, doc) = get(&store, "/api/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    // The checker can say no: a status without its fields, a state not in the list.
    let status = serde_json::json!({"$ref": "#/components/schemas/Status"});
    assert!(fits(&doc, &status, &serde_json::json!({"capture": "c"}), "x").is_err());
    let mut st = serde_json::to_value(Status::new("c", "k", State::Done)).unwrap();
    assert!(fits(&doc, &status, &st, "x").is_ok());
    st["state"] = "finished".into();
    assert!(fits(&doc, &status, &st, "x").is_err());
    let id = capture_id(KEY);
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for p in [
        "/api/captures",
        "/api/captures/{id}",
        "/api/captures/{id}/summary",
        "/api/search",
        "/api/export",
        "/api/alerts.eve",
        "/api/openapi.json",
        "/api/flows/{capture}/{shard}/{row}",
        "/api/flows/{capture}/{shard}/{row}/explain",
        "/api/flows/{capture}/{shard}/{row}/pcap",
        "/api/federation",
    ] {
        assert!(paths.iter().any(|x| *x == p), "{p} undocumented");
    }
    assert_eq!(paths.len(), 11, "documented but not served: {paths:?}");
    for (path, uri, status) in [
        ("/api/federation", "/api/federation".to_string(), "200"),
        ("/api/captures", "/api/captures".to_string(), "200"),
        ("/api/captures/{id}", format!("/api/captures/{id}"), "200"),
        (
            "/api/captures/{id}",
            "/api/captures/nope-0".to_string(),
            "404",
        ),
        (
            "/api/captures/{id}",
            "/api/captures/a%20b".to_string(),
            "400",
        ),
        (
            "/api/captures/{id}/summary",
            format!("/api/captures/{id}/summary"),
            "200",
        ),
        (
            "/api/search",
            "/api/search?q=alert%20true&limit=20".to_string(),
            "200",
        ),
        (
            "/api/search",
            "/api/search?q=src%201.2.3".to_string(),
            "400",
        ),
        (
            "/api/flows/{capture}/{shard}/{row}",
            format!("/api/flows/{id}/0/5"),
            "200",
        ),
        (
            "/api/flows/{capture}/{shard}/{row}",
            format!("/api/flows/{id}/0/999999"),
            "404",
        ),
        (
            "/api/flows/{capture}/{shard}/{row}/explain",
            format!("/api/flows/{id}/0/5/explain"),
            "200",
        ),
    ] {
        let (s, v) = get(&store, &uri).await;
        assert_eq!(s.as_str(), status, "{uri}");
        let schema = &doc["paths"][path]["get"]["responses"][status];
        let schema = match schema["$ref"].as_str() {
            Some(r) => &doc["components"]["responses"][r.rsplit('/').next().unwrap()],
            None => schema,
        };
        let schema = &schema["content"]["application/json"]["schema"];
        assert!(!schema.is_null(), "{path} {status}: no schema");
        fits(&doc, schema, &v, uri.as_str()).unwrap();
    }
}

/// The flows of a search, each cut out of the capture: read back with weir's own reader, a
/// carved PCAP holds only packets of that flow's 5-tuple (either direction), as many as the
/// flow table counted, with the same bytes on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flows_pcap_holds_exactly_its_packets() {
    let (_d, store) = store();
    let id = capture_id(KEY);
    // The scan's single-SYN flows and the capture's longest flows.
    let (_, scans) = get(
        &store,
        &format!("/api/search?capture={id}&q=class%20%22Port%20Scan%22&limit=5"),
    )
    .await;
    let (_, long) = get(
        &store,
        &format!("/api/search?capture={id}&sort=packets_fwd&desc=true&limit=5"),
    )
    .await;
    let rows: Vec<Value> = [scans, long]
        .iter()
        .flat_map(|v| v["rows"].as_array().unwrap().clone())
        .collect();
    assert_eq!(rows.len(), 10);
    for r in rows {
        let uri = format!("/api/flows/{id}/{}/{}/pcap", r["shard"], r["row"]);
        let app = weir_api::router(store.clone(), Arc::new(weir_classify::shipped_cpu_model));
        let res = app
            .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{uri}");
        assert_eq!(
            res.headers()["content-type"],
            "application/vnd.tcpdump.pcap"
        );
        let pcap = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        let mut reader = weir_capture::CaptureReader::new(std::io::Cursor::new(pcap)).unwrap();
        let (mut packets, mut bytes) = (0u64, 0u64);
        let ends =
            |ip: &Value, port: &Value| (ip.as_str().unwrap().to_string(), port.as_u64().unwrap());
        let (a, b) = (
            ends(&r["src_ip"], &r["src_port"]),
            ends(&r["dst_ip"], &r["dst_port"]),
        );
        while let Some(p) = reader.next_packet().unwrap() {
            let weir_capture::Decode::Packet(d) = weir_capture::decode(p.linktype, p.data) else {
                panic!("{uri}: a packet that does not decode");
            };
            let (s, t) = (
                (d.src.to_string(), u64::from(d.sport)),
                (d.dst.to_string(), u64::from(d.dport)),
            );
            assert!(
                (s == a && t == b) || (s == b && t == a),
                "{uri}: {s:?} -> {t:?} is not {a:?} <-> {b:?}"
            );
            assert_eq!(u64::from(d.proto), r["proto"].as_u64().unwrap());
            packets += 1;
            bytes += u64::from(p.orig_len);
        }
        let want = |f: &str, g: &str| r[f].as_u64().unwrap() + r[g].as_u64().unwrap();
        assert_eq!(packets, want("packets_fwd", "packets_bwd"), "{uri}");
        assert_eq!(bytes, want("bytes_fwd", "bytes_bwd"), "{uri}");
    }
    // A flow that is not there: a 404 that says so.
    let (s, v) = get(&store, &format!("/api/flows/{id}/7/0/pcap")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(v["error"].as_str().unwrap().contains("no shard 7"), "{v}");
}

/// An explanation is the model's own: replacing the top feature with "unknown" by hand and
/// classifying again moves the probability by what the API says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explanation_is_what_the_model_does_without_each_feature() {
    let (_d, store) = store();
    let id = capture_id(KEY);
    let (_, alerts) = get(
        &store,
        &format!("/api/search?capture={id}&q=alert%20true&limit=1"),
    )
    .await;
    let r = &alerts["rows"][0];
    let (s, e) = get(
        &store,
        &format!("/api/flows/{id}/{}/{}/explain", r["shard"], r["row"]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["class"], r["class"]);
    let list = e["features"].as_array().unwrap();
    assert_eq!(list.len(), weir_api::EXPLAINED);
    let d: Vec<f64> = list
        .iter()
        .map(|f| f["delta"].as_f64().unwrap().abs())
        .collect();
    assert!(d.windows(2).all(|w| w[0] >= w[1]), "{d:?}");
    // By hand: the full row's features, the top one unknown.
    let row = weir_search::flow_row(
        store.as_ref(),
        &id,
        r["shard"].as_u64().unwrap() as u32,
        r["row"].as_u64().unwrap() as u32,
    )
    .unwrap();
    let x = weir_records::feature_matrix(&row).unwrap();
    let mut c = Classifier::shipped_cpu().unwrap();
    let k = c
        .info()
        .classes
        .iter()
        .position(|n| n == r["class"].as_str().unwrap())
        .unwrap();
    let top = c
        .info()
        .features
        .iter()
        .position(|n| n == list[0]["feature"].as_str().unwrap())
        .unwrap();
    let mut y = x.clone();
    y[top] = f32::NAN;
    let mut both = x.clone();
    both.extend(y);
    let p = c.classify(&both).unwrap();
    let by_hand = f64::from(p.row(0)[k] - p.row(1)[k]);
    assert!(
        (by_hand - list[0]["delta"].as_f64().unwrap()).abs() < 1e-6,
        "{by_hand} vs {}",
        list[0]
    );
}

async fn call(
    app: &axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// With a token every route wants it (header or the cookie `?token=` sets); without one,
/// nothing is asked. `/metrics` counts what was answered and the captures by state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_everything_and_metrics_count_what_was_served() {
    let (_d, store) = store();
    let ops = |t: Option<&str>| {
        weir_api::operated(
            weir_api::router(store.clone(), Arc::new(weir_classify::shipped_cpu_model)),
            Arc::new(weir_api::Ops::new(store.clone(), t.map(String::from))),
        )
    };
    let open = ops(None);
    let (s, _, _) = call(
        &open,
        Request::get("/api/captures").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let guarded = ops(Some("s3cret-token"));
    for uri in [
        "/api/captures",
        "/api/search?q=alert%20true",
        "/metrics",
        "/api/openapi.json",
    ] {
        let (s, _, body) = call(&guarded, Request::get(uri).body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{uri}: {body}");
        assert!(body.contains("needs its token"), "{body}");
        let wrong = Request::get(uri)
            .header("authorization", "Bearer s3cret-tokeN")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            call(&guarded, wrong).await.0,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
        let right = Request::get(uri)
            .header("authorization", "Bearer s3cret-token")
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&guarded, right).await.0, StatusCode::OK, "{uri}");
    }
    // ?token= once (percent-encoded as a browser may send it) is exchanged for a session
    // cookie, which is then enough; the raw token as a cookie is not.
    let (s, h, _) = call(
        &guarded,
        Request::get("/api/captures?token=s3cret%2Dtoken")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let cookie = h["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("weir_session=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Max-Age=43200")
            && !cookie.contains("s3cret"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let with_cookie = Request::get("/api/captures")
        .header("cookie", format!("a=b; {session}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&guarded, with_cookie).await.0, StatusCode::OK);
    let raw = Request::get("/api/captures")
        .header("cookie", "weir_token=s3cret-token")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&guarded, raw).await.0, StatusCode::UNAUTHORIZED);

    // Metrics: the requests above, by route and status, and the captures by state.
    let m = Request::get("/metrics")
        .header("authorization", "Bearer s3cret-token")
        .body(Body::empty())
        .unwrap();
    let (s, h, text) = call(&guarded, m).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    for line in [
        "weir_http_requests_total{method=\"GET\",route=\"/api/captures\",status=\"401\"} 3",
        "weir_http_requests_total{method=\"GET\",route=\"/api/captures\",status=\"200\"} 3",
        "weir_captures{state=\"done\"} 1",
        "weir_captures{state=\"queued\"} 1",
        "weir_captures{state=\"failed\"} 0",
        "weir_store_up 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    assert!(text.contains("weir_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/search\",le=\"+Inf\"} 3"), "{text}");
}

/// An upload through the API is stored and analyzed to done; a non-capture and one over the
/// limit are refused with a message, and nothing is stored for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_analyzed_and_bad_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(LocalStore::new(dir.path()));
    let flows = Arc::new(weir_api::Flows::new(
        store.clone(),
        None,
        Arc::new(weir_classify::shipped_cpu_model),
    ));
    let up = Arc::new(weir_api::Uploads::new(flows.clone(), 200_000));
    let app = weir_api::router_with(flows).merge(weir_api::uploads_router(up));
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/loopback.pcapng"
    ))
    .unwrap();
    let post = |name: &str, body: Vec<u8>| {
        Request::post(format!("/api/uploads?name={name}"))
            .body(Body::from(body))
            .unwrap()
    };
    let (s, _, body) = call(&app, post("../../etc/sample.pcapng", sample.clone())).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let id = v["capture"].as_str().unwrap().to_string();
    let digest = weir_api::content_digest(&sample);
    let key = format!("uploads/sample-{}.pcapng", &digest[..12]);
    assert_eq!(
        id,
        capture_id(&key),
        "the name is cut to a file name, the key carries the content's hash"
    );
    let t0 = std::time::Instant::now();
    loop {
        let st = capture_status(store.as_ref(), &id).unwrap();
        if st.as_ref().is_some_and(|s| s.state == State::Done) {
            assert_eq!(st.unwrap().flows, 53);
            break;
        }
        assert!(t0.elapsed().as_secs() < 60, "not done: {st:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (s, _, body) = call(
        &app,
        post("notes.txt", b"not a capture, just some words here".to_vec()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("notes.txt is not a capture"), "{body}");
    let (s, _, body) = call(&app, post("big.pcap", vec![0xd4; 300_000])).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body.contains("too large (the limit is 200000 bytes, 195.3 KiB"),
        "{body}"
    );
    assert_eq!(store.list("uploads/").unwrap(), vec![key.clone()]);
    // The same bytes again, under any name: the capture they are, nothing stored twice.
    for name in ["sample.pcapng", "again.pcapng"] {
        let (s, _, body) = call(&app, post(name, sample.clone())).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (v["capture"].as_str(), v["duplicate"].as_bool()),
            (Some(id.as_str()), Some(true))
        );
    }
    assert_eq!(store.list("uploads/").unwrap(), vec![key.clone()]);
}
