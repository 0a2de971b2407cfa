//! Reading the events AWS sends: S3 notifications (direct, or inside SQS messages) and SQS
//! batches. Shapes as AWS documents them; the tests use AWS's own sample events.

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::Value;

/// One object an S3 notification says was created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// Bucket.
    pub bucket: String,
    /// Key, URL-decoded (S3 events carry keys form-encoded: `+` for space, `%XX`).
    pub key: String,
    /// Size in bytes, when the event says.
    pub size: Option<i64>,
}

/// What one delivery asks the splitter to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// The SQS message it came in (None when S3 invoked the function directly).
    pub message_id: Option<String>,
    /// Deliveries of that message so far (1 when direct).
    pub receive_count: u32,
    /// Objects created (empty for `s3:TestEvent`, which S3 sends when a notification is set
    /// up, and for events other than ObjectCreated), or why the message is not an S3 event.
    pub created: Result<Vec<Created>, String>,
}

/// Decode an S3 event key: `+` is a space, `%XX` a byte; malformed escapes are kept as they
/// are.
pub fn decode_key(key: &str) -> String {
    weir_pipeline::percent_decode(key)
}

/// The objects an S3 event (as JSON) says were created; `s3:TestEvent` gives none.
pub fn created(event: &Value) -> Result<Vec<Created>, String> {
    if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let ev: S3Event =
        serde_json::from_value(event.clone()).map_err(|e| format!("not an S3 event: {e}"))?;
    Ok(ev
        .records
        .into_iter()
        .filter(|r| {
            r.event_name
                .as_deref()
                .is_some_and(|n| n.starts_with("ObjectCreated:"))
        })
        .filter_map(|r| {
            Some(Created {
                bucket: r.s3.bucket.name?,
                key: decode_key(&r.s3.object.key?),
                size: r.s3.object.size,
            })
        })
        .collect())
}

/// Whether an event is an SQS batch (its records come from `aws:sqs`) rather than an S3
/// notification.
pub fn via_sqs(event: &Value) -> bool {
    event
        .pointer("/Records/0/eventSource")
        .and_then(Value::as_str)
        == Some("aws:sqs")
}

/// The uploads in what the splitter was invoked with: an S3 event (S3 → Lambda), or an SQS
/// batch whose messages are S3 events (S3 → SQS → Lambda, and the local trigger loop).
pub fn uploads(event: &Value) -> Result<Vec<Upload>, String> {
    if !via_sqs(event) {
        return Ok(vec![Upload {
            message_id: None,
            receive_count: 1,
            created: Ok(created(event)?),
        }]);
    }
    let batch: SqsEvent =
        serde_json::from_value(event.clone()).map_err(|e| format!("not an SQS event: {e}"))?;
    batch
        .records
        .into_iter()
        .map(|m| {
            let created = serde_json::from_str::<Value>(m.body.as_deref().unwrap_or(""))
                .map_err(|e| format!("message body is not JSON: {e}"))
                .and_then(|body| created(&body));
            Ok(Upload {
                receive_count: receive_count(&m.attributes),
                message_id: m.message_id,
                created,
            })
        })
        .collect()
}

/// `ApproximateReceiveCount` from an SQS record's attributes (1 when absent).
pub fn receive_count(attributes: &std::collections::HashMap<String, String>) -> u32 {
    attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}
