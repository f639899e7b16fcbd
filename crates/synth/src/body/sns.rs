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

#[cfg(test)]
mod tests {
    use crate::body::testing::{ACCOUNT, REGION, call};

    #[test]
    fn publish_hides_the_message_and_lists_the_topic() {
        let w = call("sns", "Publish", 0, false);
        assert_eq!(w.arn(), format!("arn:aws:sns:{REGION}:{ACCOUNT}:{}", w.name()));
        assert_eq!(w.body["requestParameters"]["topicArn"], w.arn());
        assert_eq!(w.body["requestParameters"]["message"], "HIDDEN_DUE_TO_SECURITY_REASONS");
        assert_eq!(w.body["responseElements"]["messageId"].as_str().unwrap().len(), 36);
        assert_eq!(w.resource("AWS::SNS::Topic").expect("topic")["ARN"], w.arn());
        assert!(call("sns", "Publish", 0, true).body["responseElements"].is_null());
    }
}
