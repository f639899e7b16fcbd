//! Lambda calls: invocations (data events) and function management.

use crate::ids::{push_b64, push_hex};
use crate::json::{Json, push_padded};
use crate::names::{self, QUEUES};
use crate::time::push_iso;

use super::{Call, Extra, arn, generic, resource, response, uuid};

/// Lambda bodies.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    match c.ev.name {
        "Invoke" => {
            let function = &c.target.arn;
            j.object("requestParameters", |j| {
                j.kv_raw("functionName", function);
                match rng.u8(0..4) {
                    0 => j.kv("invocationType", "Event"),
                    1 => {
                        let queue = QUEUES[rng.usize(0..QUEUES.len())];
                        j.kv_with("sourceArn", |b| arn(b, "sqs", c.ctx.region, c.ctx.account, "", queue));
                    }
                    _ => {}
                }
            });
            j.kv_null("responseElements");
            j.object("additionalEventData", |j| {
                j.kv_with("functionVersion", |b| {
                    b.push_str(function);
                    b.push_str(":$LATEST");
                });
            });
            resource(x, Some(c.ctx.account), "AWS::Lambda::Function", function);
        }
        "CreateFunction20150331"
        | "UpdateFunctionCode20150331v2"
        | "UpdateFunctionConfiguration20150331v2"
        | "GetFunction"
        | "GetFunctionConfiguration" => function(j, rng, c),
        _ => generic::write(j, rng, c, x),
    }
}

const DESCRIPTION: &str = "Handles \\\"orders\\\" \\u2192 fulfilment (ticket #2231)";

/// Function management: the request and, for successful writes, the function's configuration.
fn function(j: &mut Json, rng: &mut fastrand::Rng, c: &Call) {
    let t = c.target;
    let read = c.ev.read_only;
    let runtime = ["python3.12", "nodejs20.x", "java21", "provided.al2023"][t.k % 4];
    let memory = [128u64, 256, 512, 1024, 1769, 3008][t.k % 6];
    j.object("requestParameters", |j| {
        j.kv_raw("functionName", &t.name);
        if read {
            return;
        }
        if c.ev.name == "UpdateFunctionCode20150331v2" {
            j.kv_with("s3Bucket", |b| names::push_bucket(b, c.ctx.account, 5));
            j.kv_with("s3Key", |b| {
                b.push_str("lambda/");
                b.push_str(&t.name);
                b.push('/');
                push_hex(b, rng, 12);
                b.push_str(".zip");
            });
            j.kv_bool("publish", false);
        } else {
            j.kv("runtime", runtime);
            j.kv("handler", "app.handler");
            j.kv_raw("description", DESCRIPTION);
            j.kv_u64("timeout", 30);
            j.kv_u64("memorySize", memory);
            j.object("environment", |j| j.kv_empty_obj("variables"));
        }
    });
    if read {
        j.kv_null("responseElements");
        return;
    }
    response(j, c, |j| {
        j.kv_raw("functionName", &t.name);
        j.kv_raw("functionArn", &t.arn);
        j.kv("runtime", runtime);
        j.kv_with("role", |b| {
            arn(b, "iam", "", c.ctx.account, "role/", &t.name);
            b.push_str("-role");
        });
        j.kv("handler", "app.handler");
        j.kv_u64("codeSize", rng.u64(1_000..60_000_000));
        j.kv_raw("description", DESCRIPTION);
        j.kv_u64("timeout", 30);
        j.kv_u64("memorySize", memory);
        j.kv_with("lastModified", |b| {
            let mut iso = String::with_capacity(20);
            push_iso(&mut iso, c.ctx.event_secs);
            b.push_str(&iso[..19]);
            b.push('.');
            push_padded(b, rng.u64(0..1000), 3);
            b.push_str("+0000");
        });
        j.kv_with("codeSha256", |b| {
            push_b64(b, rng, 43);
            b.push('=');
        });
        j.kv("version", "$LATEST");
        j.object("tracingConfig", |j| j.kv("mode", "PassThrough"));
        uuid(j, rng, "revisionId");
        j.kv("state", "Active");
        j.kv("lastUpdateStatus", "InProgress");
        j.kv("lastUpdateStatusReason", "The function is being created.");
        j.kv("lastUpdateStatusReasonCode", "Creating");
        j.kv("packageType", "Zip");
        j.array("architectures", |j| j.str(if t.k.is_multiple_of(2) { "arm64" } else { "x86_64" }));
        j.object("ephemeralStorage", |j| j.kv_u64("size", 512));
        j.object("snapStart", |j| {
            j.kv("applyOn", "None");
            j.kv("optimizationStatus", "Off");
        });
        j.object("loggingConfig", |j| {
            j.kv("logFormat", "Text");
            j.kv_with("logGroup", |b| {
                b.push_str("/aws/lambda/");
                b.push_str(&t.name);
            });
        });
    });
}

#[cfg(test)]
mod tests {
    use crate::body::testing::{ACCOUNT, REGION, call};

    #[test]
    fn invoke_names_the_function_and_its_version() {
        let w = call("lambda", "Invoke", 0, false);
        assert_eq!(w.arn(), format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}", w.name()));
        assert_eq!(w.body["requestParameters"]["functionName"], w.arn());
        assert_eq!(w.body["additionalEventData"]["functionVersion"], format!("{}:$LATEST", w.arn()));
        let f = w.resource("AWS::Lambda::Function").expect("function resource");
        assert_eq!(f["ARN"], w.arn());
    }

    #[test]
    fn create_function_returns_its_configuration() {
        let w = call("lambda", "CreateFunction20150331", 1, false);
        let (req, res) = (&w.body["requestParameters"], &w.body["responseElements"]);
        assert_eq!(res["functionArn"], w.arn());
        assert_eq!(res["functionName"], w.name());
        assert_eq!(res["role"], format!("arn:aws:iam::{ACCOUNT}:role/{}-role", w.name()));
        for k in ["runtime", "memorySize", "timeout", "handler"] {
            assert_eq!(res[k], req[k], "{k}");
        }
        assert_eq!(res["loggingConfig"]["logGroup"], format!("/aws/lambda/{}", w.name()));
        let read = call("lambda", "GetFunction", 1, false);
        assert!(read.body["responseElements"].is_null());
        assert_eq!(read.body["requestParameters"], serde_json::json!({"functionName": read.name()}));
    }
}
