//! SQS message-level data events.

use crate::ids::{push_b64, push_hex};
use crate::json::{Json, push_u64};

use super::{Call, Extra, resource, response, uuid};

/// A message-level call (`SendMessage`, `ReceiveMessage`, …).
pub(super) fn write_message(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let t = c.target;
    let receipt_handle = |j: &mut Json, rng: &mut fastrand::Rng| j.kv_with("receiptHandle", |b| push_b64(b, rng, 180));
    j.object("requestParameters", |j| {
        j.kv_with("queueUrl", |b| {
            b.push_str("https://sqs.");
            b.push_str(c.ctx.region);
            b.push_str(".amazonaws.com/");
            b.push_str(c.ctx.account);
            b.push('/');
            b.push_str(&t.name);
        });
        match c.ev.name {
            "ReceiveMessage" => {
                j.kv_u64("maxNumberOfMessages", 10);
                j.kv_u64("waitTimeSeconds", 20);
                j.kv_u64("visibilityTimeout", 30);
                j.array("attributeNames", |j| j.str("All"));
            }
            "SendMessage" => {
                j.kv("messageBody", "HIDDEN_DUE_TO_SECURITY_REASONS");
                if rng.bool() {
                    j.object("messageAttributes", |j| {
                        j.object("traceparent", |j| {
                            j.kv("dataType", "String");
                            j.kv_with("stringValue", |b| {
                                b.push_str("00-");
                                push_hex(b, rng, 32);
                                b.push('-');
                                push_hex(b, rng, 16);
                                b.push_str("-01");
                            });
                        });
                    });
                }
            }
            "SendMessageBatch" => {
                j.array("entries", |j| {
                    for i in 0..rng.u64(2..11) {
                        j.element(|j| {
                            j.kv_with("id", |b| push_u64(b, i));
                            j.kv("messageBody", "HIDDEN_DUE_TO_SECURITY_REASONS");
                        });
                    }
                });
            }
            "ChangeMessageVisibility" => {
                receipt_handle(j, rng);
                j.kv_u64("visibilityTimeout", rng.u64(0..900));
            }
            _ => receipt_handle(j, rng),
        }
    });
    if c.ev.name == "SendMessage" {
        response(j, c, |j| {
            j.kv_with("mD5OfMessageBody", |b| push_hex(b, rng, 32));
            uuid(j, rng, "messageId");
        });
    } else {
        j.kv_null("responseElements");
    }
    resource(x, Some(c.ctx.account), "AWS::SQS::Queue", &t.arn);
}

#[cfg(test)]
mod tests {
    use crate::body::testing::{ACCOUNT, REGION, call};

    #[test]
    fn send_message_addresses_the_queue_and_returns_an_id() {
        let w = call("sqs", "SendMessage", 1, false);
        let url = format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{}", w.name());
        assert_eq!(w.body["requestParameters"]["queueUrl"], url);
        assert_eq!(w.body["requestParameters"]["messageBody"], "HIDDEN_DUE_TO_SECURITY_REASONS");
        let id = w.body["responseElements"]["messageId"].as_str().expect("messageId");
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(w.body["responseElements"]["mD5OfMessageBody"].as_str().unwrap().len(), 32);
        let q = w.resource("AWS::SQS::Queue").expect("queue resource");
        assert_eq!(q["ARN"], format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{}", w.name()));
        assert!(call("sqs", "SendMessage", 1, true).body["responseElements"].is_null());
    }

    #[test]
    fn batch_entries_are_numbered() {
        let w = call("sqs", "SendMessageBatch", 4, false);
        let entries = w.body["requestParameters"]["entries"].as_array().expect("entries");
        assert!((2..11).contains(&entries.len()));
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e["id"], i.to_string());
        }
    }
}
