//! Test fixture: one call of a catalog entry, written through [`super::write`] and parsed back.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use crate::catalog::SERVICES;
use crate::identity::{Caller, Kind};
use crate::ids::hash_str;
use crate::json::Json;
use crate::names;

use super::{Call, Ctx, Extra, Target, error, pick_target, write};

/// The recipient account of every fixture call.
pub(super) const ACCOUNT: &str = "111122223333";
/// Its region.
pub(super) const REGION: &str = "eu-central-1";
/// 2024-03-02T00:00:00Z.
pub(super) const EVENT_SECS: i64 = 1_709_337_600;
/// The other accounts of the organisation.
const PEERS: [&str; 2] = ["444455556666", "777788889999"];

/// What a body wrote for one call, parsed.
#[derive(Debug)]
pub(super) struct Written {
    /// `{"requestParameters":…,"responseElements":…,…}`.
    pub body: Value,
    /// The `resources` entries.
    pub resources: Vec<Value>,
    /// `serviceEventDetails`, when written.
    pub details: Option<Value>,
    pub shared: bool,
    pub no_request_id: bool,
    pub s3_request_id: bool,
    /// The call's target (JSON string content: see [`Written::name`] and friends).
    pub target: Target,
    /// `(errorCode, errorMessage)` when the call failed.
    pub error: Option<(String, String)>,
}

impl Written {
    /// The target's name, unescaped.
    pub fn name(&self) -> String {
        unescape(&self.target.name)
    }

    /// The target's ARN, unescaped.
    pub fn arn(&self) -> String {
        unescape(&self.target.arn)
    }

    /// The target's S3 object key, unescaped.
    pub fn key(&self) -> String {
        unescape(&self.target.key)
    }

    /// The resource entry of type `ty`, if listed.
    pub fn resource(&self, ty: &str) -> Option<&Value> {
        self.resources.iter().find(|r| r["type"] == ty)
    }
}

/// JSON string content as the text it stands for.
fn unescape(content: &str) -> String {
    serde_json::from_str(&format!("\"{content}\"")).unwrap_or_else(|e| panic!("{content}: {e}"))
}

/// An IAM user of the recipient account calling directly.
pub(super) fn iam_user() -> Caller {
    Caller {
        kind: Kind::IamUser,
        arn: format!("arn:aws:iam::{ACCOUNT}:user/alice"),
        account: ACCOUNT.to_owned(),
        invoked_by: None,
        role_use: None,
        console: false,
        index: 0,
    }
}

/// The signature of the body writers.
pub(super) type Body = fn(&mut Json, &mut fastrand::Rng, &Call, &mut Extra);

/// `ns`'s event `name` called by `caller`, failing when `failed`, with the RNG seeded `seed`.
pub(super) fn call_as(ns: &str, name: &str, seed: u64, failed: bool, caller: &Caller) -> Written {
    call_body(ns, name, seed, failed, caller, write)
}

/// [`call_as`], with the body written by `body` instead of the dispatching [`write`].
pub(super) fn call_body(ns: &str, name: &str, seed: u64, failed: bool, caller: &Caller, body: Body) -> Written {
    let si = SERVICES.iter().position(|s| s.ns == ns).unwrap_or_else(|| panic!("no service {ns}"));
    let svc = &SERVICES[si];
    let ev = names::events()[si].iter().find(|e| e.name == name).unwrap_or_else(|| panic!("no {ns}:{name}"));
    let peers: Vec<String> = PEERS.map(String::from).to_vec();
    let ctx = Ctx {
        account: ACCOUNT,
        account_hash: hash_str(ACCOUNT),
        region: REGION,
        event_secs: EVENT_SECS,
        peers: &peers,
        mgmt_account: &peers[0],
    };
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut target = Target::default();
    pick_target(&mut rng, &ctx, svc, ev, caller, &mut target);
    let call = Call { svc, ev, ctx: &ctx, caller, target: &target, error: failed };
    let error = failed.then(|| {
        let (mut code, mut msg) = (String::new(), String::new());
        error(&mut rng, &call, &mut code, &mut msg);
        (code, msg)
    });
    let (mut j, mut x) = (Json::default(), Extra::default());
    j.element(|j| body(j, &mut rng, &call, &mut x));
    let parse = |what: &str, text: &str| -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{ns}:{name} {what} is not JSON ({e}): {text}"))
    };
    let body = parse("body", &j.buf);
    let resources = match parse("resources", &format!("[{}]", x.resources.buf)) {
        Value::Array(a) => a,
        other => panic!("{other}"),
    };
    let details = (!x.details.buf.is_empty()).then(|| parse("details", &x.details.buf));
    Written {
        body,
        resources,
        details,
        shared: x.shared,
        no_request_id: x.no_request_id,
        s3_request_id: x.s3_request_id,
        target,
        error,
    }
}

/// [`call_as`] by an IAM user of the recipient account.
pub(super) fn call(ns: &str, name: &str, seed: u64, failed: bool) -> Written {
    call_as(ns, name, seed, failed, &iam_user())
}

/// The first of seeds `0..200` whose call satisfies `want` (bodies vary with the seed).
pub(super) fn call_where(ns: &str, name: &str, failed: bool, want: impl Fn(&Written) -> bool) -> Written {
    (0..200)
        .map(|seed| call(ns, name, seed, failed))
        .find(|w| want(w))
        .unwrap_or_else(|| panic!("no seed in 0..200 gives the wanted {ns}:{name}"))
}

/// A `Mar 2, 2024, 1:00:00 AM` date as a time.
pub(super) fn java_date(v: &Value) -> DateTime<Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    NaiveDateTime::parse_from_str(s, "%b %d, %Y, %I:%M:%S %p").unwrap_or_else(|e| panic!("{s}: {e}")).and_utc()
}

/// The fixture's event time.
pub(super) fn event_time() -> DateTime<Utc> {
    DateTime::from_timestamp(EVENT_SECS, 0).expect("valid time")
}

#[test]
fn java_dates_parse() {
    let t = java_date(&Value::from("Mar 2, 2024, 1:05:09 PM"));
    assert_eq!(t.to_rfc3339(), "2024-03-02T13:05:09+00:00");
}
