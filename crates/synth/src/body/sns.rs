//! SNS publishing.

use crate::json::Json;

use super::{Call, Extra, generic, resource, response, uuid};

/// SNS bodies.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    match c.ev.name {
        "Publish" => {
            j.object("requestParameters", |j| {
                j.kv_raw("topicArn", &c.target.arn);
                j.kv("message", "HIDDEN_DUE_TO_SECURITY_REASONS");
                if rng.u8(0..3) == 0 {
                    j.kv_raw("subject", "Order #1042 shipped \\u2013 caf\\u00e9 \u{2615}");
                }
            });
            response(j, c, |j| uuid(j, rng, "messageId"));
            resource(x, Some(c.ctx.account), "AWS::SNS::Topic", &c.target.arn);
        }
        _ => generic::write(j, rng, c, x),
    }
}
