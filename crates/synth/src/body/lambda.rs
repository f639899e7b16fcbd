//! Lambda calls: invocations (data events) and function management.

use crate::ids::{push_b64, push_hex, push_uuid};
use crate::json::Json;
use crate::names::{self, QUEUES};
use crate::time::push_iso;

use super::{Call, Extra, generic, resource};

/// Lambda bodies.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "Invoke" => {
            j.obj("requestParameters");
            j.kv_raw("functionName", &c.target.arn);
            match rng.u8(0..4) {
                0 => j.kv("invocationType", "Event"),
                1 => j.kv_with("sourceArn", |b| {
                    b.push_str("arn:aws:sqs:");
                    b.push_str(c.ctx.region);
                    b.push(':');
                    b.push_str(c.ctx.account);
                    b.push(':');
                    b.push_str(QUEUES[rng.usize(0..QUEUES.len())]);
                }),
                _ => {}
            }
            j.close();
            j.kv_null("responseElements");
            j.obj("additionalEventData");
            j.kv_with("functionVersion", |b| {
                b.push_str(&c.target.arn);
                b.push_str(":$LATEST");
            });
            j.close();
            resource(x, Some(c.ctx.account), "AWS::Lambda::Function", &c.target.arn);
        }
        "CreateFunction20150331"
        | "UpdateFunctionCode20150331v2"
        | "UpdateFunctionConfiguration20150331v2"
        | "GetFunction"
        | "GetFunctionConfiguration" => lambda_function(j, rng, c),
        _ => generic::write(j, rng, c, x),
    }
}

fn lambda_function(j: &mut Json, rng: &mut fastrand::Rng, c: &Call) {
    let t = c.target;
    let read = c.ev.read_only;
    let runtime = ["python3.12", "nodejs20.x", "java21", "provided.al2023"][t.k % 4];
    let memory = [128u64, 256, 512, 1024, 1769, 3008][t.k % 6];
    j.obj("requestParameters");
    j.kv_raw("functionName", &t.name);
    if !read {
        match c.ev.name {
            "UpdateFunctionCode20150331v2" => {
                j.kv_with("s3Bucket", |b| names::push_bucket(b, c.ctx.account, 5));
                j.kv_with("s3Key", |b| {
                    b.push_str("lambda/");
                    b.push_str(&t.name);
                    b.push('/');
                    push_hex(b, rng, 12);
                    b.push_str(".zip");
                });
                j.kv_bool("publish", false);
            }
            _ => {
                j.kv("runtime", runtime);
                j.kv("handler", "app.handler");
                j.kv_raw("description", "Handles \\\"orders\\\" \\u2192 fulfilment (ticket #2231)");
                j.kv_u64("timeout", 30);
                j.kv_u64("memorySize", memory);
                j.obj("environment");
                j.kv_empty_obj("variables");
                j.close();
            }
        }
    }
    j.close();
    if read || c.error {
        j.kv_null("responseElements");
        return;
    }
    j.obj("responseElements");
    j.kv_raw("functionName", &t.name);
    j.kv_raw("functionArn", &t.arn);
    j.kv("runtime", runtime);
    j.kv_with("role", |b| {
        b.push_str("arn:aws:iam::");
        b.push_str(c.ctx.account);
        b.push_str(":role/");
        b.push_str(&t.name);
        b.push_str("-role");
    });
    j.kv("handler", "app.handler");
    j.kv_u64("codeSize", rng.u64(1_000..60_000_000));
    j.kv_raw("description", "Handles \\\"orders\\\" \\u2192 fulfilment (ticket #2231)");
    j.kv_u64("timeout", 30);
    j.kv_u64("memorySize", memory);
    j.kv_with("lastModified", |b| {
        let mut iso = String::with_capacity(20);
        push_iso(&mut iso, c.ctx.event_secs);
        b.push_str(&iso[..19]);
        b.push('.');
        crate::json::push_padded(b, rng.u64(0..1000), 3);
        b.push_str("+0000");
    });
    j.kv_with("codeSha256", |b| {
        push_b64(b, rng, 43);
        b.push('=');
    });
    j.kv("version", "$LATEST");
    j.obj("tracingConfig");
    j.kv("mode", "PassThrough");
    j.close();
    j.kv_with("revisionId", |b| push_uuid(b, rng));
    j.kv("state", "Active");
    j.kv("lastUpdateStatus", "InProgress");
    j.kv("lastUpdateStatusReason", "The function is being created.");
    j.kv("lastUpdateStatusReasonCode", "Creating");
    j.kv("packageType", "Zip");
    j.arr("architectures");
    j.str(if t.k.is_multiple_of(2) { "arm64" } else { "x86_64" });
    j.close_arr();
    j.obj("ephemeralStorage");
    j.kv_u64("size", 512);
    j.close();
    j.obj("snapStart");
    j.kv("applyOn", "None");
    j.kv("optimizationStatus", "Off");
    j.close();
    j.obj("loggingConfig");
    j.kv("logFormat", "Text");
    j.kv_with("logGroup", |b| {
        b.push_str("/aws/lambda/");
        b.push_str(&t.name);
    });
    j.close();
    j.close();
}
