//! Console sign-in events (`ConsoleLogin`, `CheckMfa`, `SwitchRole`, …).

use crate::identity::Kind;
use crate::ids::push_hex;
use crate::json::Json;

use super::{Call, Extra};

/// Sign-in bodies: no request, `{"<event>": "Success"|"Failure"}` as the response, and the
/// console details in `additionalEventData`; sign-in events carry no `requestID`.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    x.no_request_id = true;
    let name = c.ev.name;
    j.kv_null("requestParameters");
    j.object("responseElements", |j| j.kv(name, if c.error { "Failure" } else { "Success" }));
    j.object("additionalEventData", |j| match name {
        "ConsoleLogin" => {
            j.kv_with("LoginTo", |b| {
                b.push_str(
                    "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_",
                );
                b.push_str(c.ctx.region);
                b.push('_');
                push_hex(b, rng, 16);
            });
            j.kv("MobileVersion", "No");
            let mfa = c.caller.kind != Kind::Root || rng.bool();
            if mfa && !c.error && c.caller.kind == Kind::IamUser {
                j.kv_raw("MFAIdentifier", &c.caller.arn.replace(":user/", ":mfa/"));
            }
            j.kv("MFAUsed", if mfa && !c.error { "Yes" } else { "No" });
        }
        "CheckMfa" => j.kv("MfaType", if rng.bool() { "Virtual MFA" } else { "FIDO2 Security Key" }),
        "SwitchRole" => {
            j.kv_raw("SwitchFrom", &c.caller.arn);
            j.kv("RedirectTo", "https://console.aws.amazon.com/s3/home");
        }
        _ => j.kv("MobileVersion", "No"),
    });
}
