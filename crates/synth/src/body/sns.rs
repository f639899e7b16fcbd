//! SNS publishing.

use crate::ids::push_uuid;
use crate::json::Json;

use super::{Call, Extra, generic, resource};

/// SNS bodies.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "Publish" => {
            j.obj("requestParameters");
            j.kv_raw("topicArn", &c.target.arn);
            j.kv("message", "HIDDEN_DUE_TO_SECURITY_REASONS");
            if rng.u8(0..3) == 0 {
                j.kv_raw("subject", "Order #1042 shipped \\u2013 caf\\u00e9 \u{2615}");
            }
            j.close();
            if c.error {
                j.kv_null("responseElements");
            } else {
                j.obj("responseElements");
                j.kv_with("messageId", |b| push_uuid(b, rng));
                j.close();
            }
            resource(x, Some(c.ctx.account), "AWS::SNS::Topic", &c.target.arn);
        }
        _ => generic::write(j, rng, c, x),
    }
}
