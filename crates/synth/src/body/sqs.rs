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
