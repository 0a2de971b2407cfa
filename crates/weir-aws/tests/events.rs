//! The handlers' event parsing, driven by the event JSON AWS sends: an S3 notification as
//! Lambda receives it, the same inside SQS messages (S3 -> SQS -> Lambda), the s3:TestEvent S3
//! sends when a notification is configured, and an SQS batch. Shapes from the AWS Lambda
//! developer guide's sample events.

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::{json, Value};
use weir_aws::events::{created, decode_key, uploads, Created};
use weir_aws::handlers::Work;

fn s3_event(key: &str) -> Value {
    json!({
      "Records": [
        {
          "eventVersion": "2.1",
          "eventSource": "aws:s3",
          "awsRegion": "us-east-1",
          "eventTime": "2026-11-23T12:00:00.000Z",
          "eventName": "ObjectCreated:Put",
          "userIdentity": { "principalId": "AWS:AIDAINPONIXQXHT3IKHL2" },
          "requestParameters": { "sourceIPAddress": "205.255.255.255" },
          "responseElements": {
            "x-amz-request-id": "D82B88E5F771F645",
            "x-amz-id-2": "vlR7PnpV2Ce81l0PRw6jlUpck7Jo5ZsQjryTjKlc5aLWGVHPZLj5NeC6qMa0emYBDXOo6QBU0Wo="
          },
          "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "weir-uploads",
            "bucket": {
              "name": "weir",
              "ownerIdentity": { "principalId": "A3I5XTEXAMAI3E" },
              "arn": "arn:aws:s3:::weir"
            },
            "object": {
              "key": key,
              "size": 1305107,
              "eTag": "b21b84d653bb07b05b1e6b33684dc11b",
              "sequencer": "0C0F6F405D6ED209E1"
            }
          }
        }
      ]
    })
}

const TEST_EVENT: &str = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-23T12:00:00.000Z","Bucket":"weir","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#;

fn sqs_event(bodies: &[(&str, String)]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| {
            json!({
              "messageId": id,
              "receiptHandle": "MessageReceiptHandle",
              "body": body,
              "attributes": {
                "ApproximateReceiveCount": "2",
                "SentTimestamp": "1523232000000",
                "SenderId": "123456789012",
                "ApproximateFirstReceiveTimestamp": "1523232000001"
              },
              "messageAttributes": {},
              "md5OfBody": "7b270e59b47ff90a553787216d55d91d",
              "eventSource": "aws:sqs",
              "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:weir-uploads",
              "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

#[test]
fn keys_are_url_decoded() {
    assert_eq!(
        decode_key("uploads/my+capture%281%29.pcap"),
        "uploads/my capture(1).pcap"
    );
    assert_eq!(decode_key("uploads/%E2%82%AC.pcapng"), "uploads/€.pcapng");
    assert_eq!(decode_key("a%2"), "a%2", "a cut escape is kept as it is");
    assert_eq!(decode_key("100%zz"), "100%zz");
}

#[test]
fn a_direct_s3_notification_names_the_object() {
    let ups = uploads(&s3_event("uploads/day+1/edge%3Ataps.pcap")).unwrap();
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].message_id, None);
    assert_eq!(
        ups[0].created,
        Ok(vec![Created {
            bucket: "weir".into(),
            key: "uploads/day 1/edge:taps.pcap".into(),
            size: Some(1305107),
        }])
    );
}

#[test]
fn the_test_event_and_other_event_names_create_nothing() {
    let v: Value = serde_json::from_str(TEST_EVENT).unwrap();
    assert_eq!(created(&v).unwrap(), vec![]);
    let mut del = s3_event("uploads/x.pcap");
    del["Records"][0]["eventName"] = json!("ObjectRemoved:Delete");
    assert_eq!(created(&del).unwrap(), vec![]);
    assert!(created(&json!({"hello": 1})).is_err());
}

#[test]
fn s3_events_inside_sqs_messages_keep_their_message_and_receive_count() {
    let ev = sqs_event(&[
        ("m-test", TEST_EVENT.to_string()),
        ("m-put", s3_event("uploads/a%20b.pcap").to_string()),
        ("m-junk", "not json".to_string()),
    ]);
    let ups = uploads(&ev).unwrap();
    assert_eq!(ups.len(), 3);
    assert_eq!(ups[0].message_id.as_deref(), Some("m-test"));
    assert_eq!(ups[0].created, Ok(vec![]));
    assert_eq!(ups[1].receive_count, 2);
    assert_eq!(ups[1].created.as_ref().unwrap()[0].key, "uploads/a b.pcap");
    assert!(ups[2].created.as_ref().unwrap_err().contains("not JSON"));
}

#[test]
fn an_sqs_batch_becomes_work_items() {
    let ev: SqsEvent = serde_json::from_value(sqs_event(&[
        ("m1", r#"{"capture":"x-00000000","shard":0,"key":"captures/x-00000000/shards/00000.parquet","flows":10}"#.into()),
        ("m2", "{}".into()),
    ]))
    .unwrap();
    let work = Work::from_event(ev);
    assert_eq!(work.len(), 2);
    assert_eq!(work[0].id, "m1");
    assert_eq!(work[0].receives, 2);
    assert!(weir_pipeline::ShardMessage::from_json(&work[0].body).is_ok());
    assert!(weir_pipeline::ShardMessage::from_json(&work[1].body).is_err());
}
