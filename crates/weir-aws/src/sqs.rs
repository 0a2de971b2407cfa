//! [`Queue`]: one SQS queue.

use aws_sdk_sqs::types::MessageSystemAttributeName;

use crate::AwsError;

/// A message taken from a queue.
#[derive(Clone, Debug)]
pub struct Received {
    /// SQS message id.
    pub id: String,
    /// Handle to delete it or change its visibility.
    pub receipt: String,
    /// The body.
    pub body: String,
    /// How many times it has been delivered (1 on the first delivery).
    pub receive_count: u32,
}

/// One SQS queue, by URL.
#[derive(Clone, Debug)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl Queue {
    /// The queue `url_or_name`: a URL as is, a name looked up with GetQueueUrl.
    pub async fn new(client: aws_sdk_sqs::Client, url_or_name: &str) -> Result<Queue, AwsError> {
        let url = if url_or_name.starts_with("http://") || url_or_name.starts_with("https://") {
            url_or_name.to_string()
        } else {
            client
                .get_queue_url()
                .queue_name(url_or_name)
                .send()
                .await
                .map_err(|e| AwsError::new(format!("GetQueueUrl {url_or_name}"), e))?
                .queue_url()
                .unwrap_or_default()
                .to_string()
        };
        Ok(Queue { client, url })
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Send one message.
    pub async fn send(&self, body: &str) -> Result<(), AwsError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::new(format!("SendMessage {}", self.url), e))
    }

    /// Take up to `max` (1-10) messages, waiting up to `wait_s` seconds for the first
    /// (long polling), hidden from other consumers for `visibility_s` seconds.
    pub async fn receive(
        &self,
        max: i32,
        wait_s: i32,
        visibility_s: i32,
    ) -> Result<Vec<Received>, AwsError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait_s.clamp(0, 20))
            .visibility_timeout(visibility_s.max(0))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("ReceiveMessage {}", self.url), e))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| Received {
                id: m.message_id().unwrap_or_default().to_string(),
                receipt: m.receipt_handle().unwrap_or_default().to_string(),
                body: m.body().unwrap_or_default().to_string(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1),
            })
            .collect())
    }

    /// Delete a message that was handled.
    pub async fn delete(&self, receipt: &str) -> Result<(), AwsError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::new(format!("DeleteMessage {}", self.url), e))
    }

    /// Keep a message hidden for `secs` more seconds (work still in progress), or make it
    /// visible again at once with 0.
    pub async fn set_visibility(&self, receipt: &str, secs: i32) -> Result<(), AwsError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(secs.max(0))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::new(format!("ChangeMessageVisibility {}", self.url), e))
    }
}
