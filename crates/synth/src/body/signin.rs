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

#[cfg(test)]
mod tests {
    use crate::body::testing::{REGION, call};

    #[test]
    fn console_login_reports_success_or_failure_without_request_id() {
        let ok = call("signin", "ConsoleLogin", 0, false);
        assert!(ok.body["requestParameters"].is_null());
        assert_eq!(ok.body["responseElements"], serde_json::json!({"ConsoleLogin": "Success"}));
        assert!(ok.no_request_id);
        let extra = &ok.body["additionalEventData"];
        assert!(extra["LoginTo"].as_str().unwrap().contains(&format!("hashArgsFromTB_{REGION}_")));
        // An IAM user signing in with MFA names the device next to the user.
        assert_eq!(extra["MFAUsed"], "Yes");
        assert_eq!(extra["MFAIdentifier"], "arn:aws:iam::111122223333:mfa/alice");

        let failed = call("signin", "ConsoleLogin", 0, true);
        assert_eq!(failed.body["responseElements"], serde_json::json!({"ConsoleLogin": "Failure"}));
        assert_eq!(failed.body["additionalEventData"]["MFAUsed"], "No");
        assert!(failed.body["additionalEventData"].get("MFAIdentifier").is_none());
    }

    #[test]
    fn switch_role_names_where_it_came_from() {
        let w = call("signin", "SwitchRole", 1, false);
        assert_eq!(w.body["additionalEventData"]["SwitchFrom"], "arn:aws:iam::111122223333:user/alice");
        assert_eq!(w.body["responseElements"]["SwitchRole"], "Success");
    }
}
