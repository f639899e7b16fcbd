//! The web console of `parquetrail serve`, over HTTP as its page uses it: every JSON endpoint
//! (and the CSV and JSON downloads) answers what a reference computed from the input JSON says,
//! bad parameters get a clear 400, the security headers are on every response, and a configured
//! console token is required. `console_browser` drives the page itself in headless Chromium.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::lookup::{Expected, read_trail, reference};
use crate::serve_clients::Served;
use crate::{gzip, parquetrail, write};

/// The account, time and IDs of the hostile records.
pub(crate) const HOSTILE_ACCOUNT: &str = "111122223333";
pub(crate) const HOSTILE_SCRIPT_ID: &str = "6f1c0000-0000-4000-8000-000000000001";
pub(crate) const HOSTILE_FORMULA_ID: &str = "6f1c0000-0000-4000-8000-000000000002";
/// Values that would run script if a page inserted them as markup.
pub(crate) const SCRIPT: &str = "<script>window.__pwned = 1</script>";
pub(crate) const IMG: &str = "\"><img src=x onerror=\"window.__pwned = 2\">";

/// The records a page must show as text and a CSV must not let run as formulas.
fn hostile_records() -> Vec<Value> {
    let identity = |user: &str| {
        json!({"type": "IAMUser", "principalId": "AIDAHOSTILE", "arn": format!("arn:aws:iam::{HOSTILE_ACCOUNT}:user/x"),
               "accountId": HOSTILE_ACCOUNT, "accessKeyId": "AKIAHOSTILE", "userName": user})
    };
    let record = |id: &str, time: &str, name: &str, user: &str, ip: &str| {
        json!({
            "eventVersion": "1.09", "userIdentity": identity(user), "eventTime": time,
            "eventSource": "iam.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
            "sourceIPAddress": ip, "userAgent": SCRIPT, "requestParameters": {"note": IMG},
            "responseElements": null, "requestID": format!("req-{id}"), "eventID": id, "readOnly": false,
            "resources": [{"accountId": HOSTILE_ACCOUNT, "type": "AWS::IAM::User", "ARN": IMG}],
            "eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": HOSTILE_ACCOUNT,
            "eventCategory": "Management", "errorCode": "AccessDenied", "errorMessage": SCRIPT,
        })
    };
    vec![
        record(HOSTILE_SCRIPT_ID, "2024-03-01T00:10:00Z", SCRIPT, IMG, "@SUM(1+1)"),
        record(HOSTILE_FORMULA_ID, "2024-03-01T00:10:01Z", "=cmd|' /C calc'!A0", "-2+3", "+1"),
    ]
}

/// A generated trail plus the hostile records, converted into `cwd/archive`; every record, for
/// the reference.
pub(crate) fn console_archive(cwd: &Path) -> Vec<Expected> {
    assert!(parquetrail(&["generate", "trail", "--mb", "1", "--seed", "17"], cwd).status.success());
    let key = format!(
        "trail/AWSLogs/{HOSTILE_ACCOUNT}/CloudTrail/us-east-1/2024/03/01/\
         {HOSTILE_ACCOUNT}_CloudTrail_us-east-1_20240301T0010Z_hostile0000000.json.gz"
    );
    let log = json!({ "Records": hostile_records() });
    write(&cwd.join(key), &gzip(log.to_string().as_bytes()));
    let out = parquetrail(&["convert", "trail", "--out", "archive"], cwd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    read_trail(&cwd.join("trail"), "CloudTrail")
}

/// An HTTP answer.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request to `base` (`http://127.0.0.1:PORT`), read to the end (`Connection: close`).
pub(crate) fn http(method: &str, base: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let host = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    let mut request = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {host}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let body = raw[split + 4..].to_vec();
    let reply = Reply { status, headers, body };
    assert!(reply.header("transfer-encoding").is_none(), "a chunked body needs a real client: {target}");
    reply
}

pub(crate) fn get(base: &str, target: &str) -> Reply {
    http("GET", base, target, &[], b"")
}

/// `?a=b&…`, each value percent-encoded.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

pub(crate) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// The reference of a console query: attributes `KEY=VALUE` (and `RequestId`), inclusive range,
/// accounts and Regions (any of), management events only, newest first.
pub(crate) fn expected<'a>(
    all: &'a [Expected],
    attrs: &[&str],
    range: (DateTime<Utc>, DateTime<Utc>),
    accounts: &[&str],
    regions: &[&str],
) -> Vec<&'a Expected> {
    reference(
        all,
        |e| {
            let attributes = attrs.iter().all(|a| {
                let (k, v) = a.split_once('=').unwrap();
                if k == "RequestId" { e.str("/requestID") == Some(v) } else { e.values(k).iter().any(|x| x == v) }
            });
            let account = accounts.is_empty() || e.values("AccountId").iter().any(|a| accounts.contains(&a.as_str()));
            let region = regions.is_empty() || e.values("AwsRegion").iter().any(|r| regions.contains(&r.as_str()));
            attributes && account && region && e.time >= range.0 && e.time <= range.1
        },
        false,
    )
}

pub(crate) fn ids_of(hits: &[&Expected]) -> Vec<String> {
    hits.iter().map(|e| e.id.clone()).collect()
}

/// Every page of `/console/api/events` for `pairs`, `limit` a page, following `next`.
fn all_pages(base: &str, pairs: &[(&str, &str)], limit: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    let mut resolved: Option<(String, String)> = None;
    for _ in 0..1000 {
        let mut p: Vec<(&str, &str)> = pairs.to_vec();
        p.push(("limit", limit));
        if let (Some(token), Some((start, end))) = (&next, &resolved) {
            p.retain(|(k, _)| *k != "start" && *k != "end");
            p.extend([("start", start.as_str()), ("end", end.as_str()), ("next", token.as_str())]);
        }
        let reply = get(base, &format!("/console/api/events{}", query(&p)));
        assert_eq!(reply.status, 200, "{pairs:?}: {}", reply.text());
        let page = reply.json();
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= limit.parse().unwrap(), "a page holds at most its limit");
        ids.extend(events.iter().map(|e| e["EventId"].as_str().unwrap().to_string()));
        resolved.get_or_insert_with(|| {
            (page["query"]["start"].as_str().unwrap().into(), page["query"]["end"].as_str().unwrap().into())
        });
        match page["next"].as_str() {
            Some(token) => next = Some(token.to_string()),
            None => return ids,
        }
    }
    panic!("paging does not end: {pairs:?}");
}

/// The most common value of `key` among `hits`.
fn most_common(hits: &[&Expected], key: &str) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in hits {
        for v in e.values(key) {
            *counts.entry(v).or_default() += 1;
        }
    }
    counts.into_iter().max_by_key(|(v, n)| (*n, v.clone())).unwrap().0
}

pub(crate) const START: &str = "2024-03-01T00:05:00Z";
pub(crate) const END: &str = "2024-03-01T00:15:00Z";

#[test]
fn console_api_answers_equal_the_reference_and_refuses_bad_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let events = console_archive(dir.path());
    let served = Served::start(dir.path(), "archive", &[], Vec::new());
    let base = served.url.as_str();
    let range = (at(START), at(END));
    let in_range = expected(&events, &[], range, &[], &[]);
    assert!(in_range.len() > 50, "the range holds enough events to page: {}", in_range.len());

    // The pickers' accounts and Regions are the input's.
    let meta = get(base, "/console/api/meta").json();
    let accounts: BTreeSet<String> = events.iter().flat_map(|e| e.values("AccountId")).collect();
    let regions: BTreeSet<String> = events.iter().flat_map(|e| e.values("AwsRegion")).collect();
    let listed = |k: &str| -> BTreeSet<String> {
        meta[k].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    assert_eq!(listed("accounts"), accounts);
    assert_eq!(listed("regions"), regions);
    assert!(meta["keys"].as_array().unwrap().iter().any(|k| k == "RequestId"));

    // Filters, several at once, with accounts and Regions, paged 7 at a time.
    let source = most_common(&in_range, "EventSource");
    let account = most_common(&in_range, "AccountId");
    let region = most_common(&in_range, "AwsRegion");
    let request = in_range[3].str("/requestID").unwrap().to_string();
    let source_attr = format!("EventSource={source}");
    let request_attr = format!("RequestId={request}");
    let cases: Vec<(Vec<&str>, Vec<&str>, Vec<&str>)> = vec![
        (vec!["ReadOnly=false"], vec![], vec![]),
        (vec![&source_attr, "ReadOnly=true"], vec![], vec![]),
        (vec![], vec![&account], vec![&region]),
        (vec!["ReadOnly=false"], vec![&account, HOSTILE_ACCOUNT], vec![]),
        (vec![&request_attr], vec![], vec![]),
    ];
    for (attrs, accounts, regions) in &cases {
        let want = ids_of(&expected(&events, attrs, range, accounts, regions));
        assert!(!want.is_empty(), "{attrs:?} {accounts:?} {regions:?}");
        let mut pairs = vec![("start", START), ("end", END)];
        pairs.extend(attrs.iter().map(|a| ("attr", *a)));
        pairs.extend(accounts.iter().map(|a| ("account", *a)));
        pairs.extend(regions.iter().map(|r| ("region", *r)));
        assert_eq!(all_pages(base, &pairs, "7"), want, "{pairs:?}");
    }

    // The columns of a page are the record's.
    let page =
        get(base, &format!("/console/api/events{}", query(&[("attr", &format!("EventId={HOSTILE_SCRIPT_ID}"))])));
    let row = &page.json()["events"][0];
    assert_eq!(row["EventName"], SCRIPT);
    assert_eq!(row["Username"], IMG);
    assert_eq!(row["SourceIpAddress"], "@SUM(1+1)");
    assert_eq!(row["Resources"], json!([{"ResourceType": "AWS::IAM::User", "ResourceName": IMG}]));
    assert_eq!(row["AccountId"], HOSTILE_ACCOUNT);
    assert_eq!(row["ErrorCode"], "AccessDenied");

    // One event by ID: its whole record, as the input has it.
    for e in [in_range[0], in_range[in_range.len() / 2], events.iter().find(|e| e.id == HOSTILE_SCRIPT_ID).unwrap()] {
        let answer = get(base, &format!("/console/api/event{}", query(&[("id", &e.id)]))).json();
        assert_eq!(answer["events"].as_array().unwrap().len(), 1, "{}", e.id);
        assert_eq!(answer["events"][0]["record"], e.record, "{}", e.id);
        assert_eq!(answer["events"][0]["summary"]["EventId"], e.id.as_str());
        assert!(answer["query"]["athena_sql"].as_str().unwrap().contains("SELECT"));
    }
    let missing = get(base, "/console/api/event?id=no-such-event");
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"].as_str().unwrap().contains("no-such-event"));

    // Downloads: the whole result from its beginning, CSV cells guarded against formulas.
    let want = expected(&events, &["ReadOnly=false"], range, &[], &[]);
    let pairs = [("start", START), ("end", END), ("attr", "ReadOnly=false"), ("limit", "5000")];
    let csv_reply = get(base, &format!("/console/api/events.csv{}", query(&pairs)));
    assert_eq!(csv_reply.status, 200, "{}", csv_reply.text());
    assert!(csv_reply.header("content-disposition").unwrap().contains("attachment"));
    let mut reader = csv::Reader::from_reader(csv_reply.body.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.iter().map(|r| r[column("Event ID")].to_string()).collect::<Vec<_>>(), ids_of(&want));
    let formula = rows.iter().find(|r| &r[column("Event ID")] == HOSTILE_FORMULA_ID).unwrap();
    assert_eq!(&formula[column("Event name")], "'=cmd|' /C calc'!A0");
    assert_eq!(&formula[column("User name")], "'-2+3");
    assert_eq!(&formula[column("Source IP address")], "'+1");
    let script = rows.iter().find(|r| &r[column("Event ID")] == HOSTILE_SCRIPT_ID).unwrap();
    assert_eq!(&script[column("Source IP address")], "'@SUM(1+1)");
    assert_eq!(&script[column("Event name")], SCRIPT);
    for (row, e) in rows.iter().zip(&want) {
        assert_eq!(row[column("Event time")].parse::<DateTime<Utc>>().unwrap(), e.time);
        let guarded = |v: Option<String>| {
            let v = v.unwrap_or_default();
            if v.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{v}") } else { v }
        };
        assert_eq!(row[column("User name")], guarded(e.username()), "{}", e.id);
        assert_eq!(row[column("Event name")], guarded(e.str("/eventName").map(str::to_string)), "{}", e.id);
    }
    let json_reply = get(base, &format!("/console/api/events.json{}", query(&pairs)));
    let downloaded = json_reply.json();
    let downloaded = downloaded["Events"].as_array().unwrap();
    assert_eq!(downloaded.len(), want.len());
    for (d, e) in downloaded.iter().zip(&want) {
        let record: Value = serde_json::from_str(d["CloudTrailEvent"].as_str().unwrap()).unwrap();
        assert_eq!(record, e.record);
    }

    // The dashboard of the range: per-minute buckets (ten minutes, inclusive: eleven), widgets.
    let dash = get(base, &format!("/console/api/dashboard{}", query(&[("start", START), ("end", END)]))).json();
    assert_eq!(dash["events"], in_range.len());
    assert_eq!(dash["truncated"], false);
    let width = dash["events_over_time"]["bucket_seconds"].as_i64().unwrap();
    assert_eq!(width, 60);
    let points = dash["events_over_time"]["points"].as_array().unwrap();
    let mut buckets = vec![0_u64; 11];
    for e in &in_range {
        buckets[((e.time - range.0).num_seconds() / 60) as usize] += 1;
    }
    let counts: Vec<u64> = points.iter().map(|p| p["count"].as_u64().unwrap()).collect();
    assert_eq!(counts, buckets);
    assert_eq!(at(points[3]["start"].as_str().unwrap()), range.0 + TimeDelta::minutes(3));
    let widget = |id: &str| dash["widgets"].as_array().unwrap().iter().find(|w| w["id"] == id).unwrap().clone();
    let count_of = |f: &dyn Fn(&Expected) -> bool| in_range.iter().filter(|e| f(e)).count();
    let denied = ["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Client.UnauthorizedOperation"];
    assert_eq!(widget("errors")["total"], count_of(&|e| e.str("/errorCode").is_some()));
    assert_eq!(
        widget("access_denied")["total"],
        count_of(&|e| e.str("/errorCode").is_some_and(|c| denied.contains(&c)))
    );
    assert_eq!(widget("console_sign_ins")["total"], count_of(&|e| e.str("/eventName") == Some("ConsoleLogin")));
    assert_eq!(widget("root_activity")["total"], count_of(&|e| e.str("/userIdentity/type") == Some("Root")));
    assert_eq!(
        widget("iam_changes")["total"],
        count_of(&|e| e.str("/eventSource") == Some("iam.amazonaws.com") && e.record["readOnly"] == false)
    );
    let top = widget("top_events");
    let name = most_common(&in_range, "EventName");
    assert_eq!(top["bars"][0]["label"], name.as_str());
    assert_eq!(top["bars"][0]["count"], count_of(&|e| e.str("/eventName") == Some(name.as_str())));
    assert_eq!(top["bars"][0]["attrs"], json!([format!("EventName={name}")]));
    let by_account = widget("accounts");
    for bar in by_account["bars"].as_array().unwrap() {
        let a = bar["label"].as_str().unwrap();
        assert_eq!(bar["count"], count_of(&|e| e.values("AccountId").iter().any(|x| x == a)), "{a}");
    }

    // Bad parameters: a 400 that says what is wrong, never a 500.
    for (path, q) in [
        ("/console/api/events", "?limit=0"),
        ("/console/api/events", "?limit=many"),
        ("/console/api/events", "?start=yesterday"),
        ("/console/api/events", "?start=2024-03-02&end=2024-03-01"),
        ("/console/api/events", "?attr=Bogus=1"),
        ("/console/api/events", "?attr=EventName"),
        ("/console/api/events", "?next=forged.token"),
        ("/console/api/event", ""),
        ("/console/api/event", "?id="),
        ("/console/api/events.csv", "?limit=999999"),
        ("/console/api/events.json", "?end=tomorrow"),
        ("/console/api/dashboard", "?start=x"),
    ] {
        let reply = get(base, &format!("{path}{q}"));
        assert_eq!(reply.status, 400, "{path}{q}: {}", reply.text());
        assert!(!reply.json()["error"].as_str().unwrap().is_empty(), "{path}{q}");
    }

    // Every response carries the browser protections; the LookupEvents API works as before.
    let page = get(base, "/");
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let csp = page.header("content-security-policy").unwrap();
    for directive in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(!page.text().contains("<script>"), "no inline script in the page");
    // Another name for this machine (DNS rebinding) is refused without a token.
    for target in ["/", "/console/api/meta"] {
        let rebound = http("GET", base, target, &[("Host", "attacker.example:8470")], b"");
        assert_eq!(rebound.status, 403, "{target}");
    }
    assert_eq!(http("GET", base, "/console/api/meta", &[("Host", "localhost")], b"").status, 200);
    for asset in ["/console/assets/app.js", "/console/assets/app.css", "/events", "/dashboard", "/event"] {
        assert_eq!(get(base, asset).status, 200, "{asset}");
    }
    // An unknown path: a 404 that says what this server serves.
    let missing = get(base, "/console/nope");
    assert_eq!(missing.status, 404);
    let message = missing.json()["message"].as_str().unwrap().to_string();
    for served in ["POST /", "GET /", "/insights", "/console/api/"] {
        assert!(message.contains(served), "{message}");
    }
    let api = http(
        "POST",
        base,
        "/",
        &[
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"),
        ],
        json!({"LookupAttributes": [{"AttributeKey": "EventId", "AttributeValue": HOSTILE_SCRIPT_ID}]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(api.status, 200, "{}", api.text());
    assert_eq!(api.json()["Events"][0]["EventId"], HOSTILE_SCRIPT_ID);
}

#[test]
fn a_console_token_is_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    console_archive(dir.path());
    let token = "console-token-for-the-test-0123";
    std::fs::write(dir.path().join("token.txt"), format!("{token}\n")).unwrap();
    let served = Served::start(dir.path(), "archive", &["--console-token-file", "token.txt"], Vec::new());
    let base = served.url.as_str();

    let page = get(base, "/");
    assert_eq!(page.status, 401);
    assert!(page.text().contains("Sign in"), "the sign-in form");
    assert_eq!(get(base, "/console/api/meta").status, 401);
    let bearer = format!("Bearer {token}");
    let with = |value: &str| http("GET", base, "/console/api/meta", &[("Authorization", value)], b"").status;
    assert_eq!(with(&bearer), 200);
    assert_eq!(with("Bearer console-token-for-the-test-0124"), 401);
    assert_eq!(with(&format!("Bearer {token}x")), 401);
    let cookie = format!("other=1; parquetrail_console={token}");
    assert_eq!(http("GET", base, "/", &[("Cookie", &cookie)], b"").status, 200);

    let form = |t: &str| {
        http("POST", base, "/console/login", &[("Content-Type", "application/x-www-form-urlencoded")], t.as_bytes())
    };
    let signed_in = form(&format!("token={token}"));
    assert_eq!(signed_in.status, 303);
    let set = signed_in.header("set-cookie").unwrap();
    assert!(set.starts_with(&format!("parquetrail_console={token}")) && set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    let refused = form("token=wrong");
    assert_eq!(refused.status, 401);
    assert!(refused.header("set-cookie").is_none());

    // A short token is refused before the server starts, and --help says to put TLS in front.
    std::fs::write(dir.path().join("short.txt"), "short\n").unwrap();
    let out = parquetrail(&["serve", "archive", "--console-token-file", "short.txt"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 16 characters"));
    let help = parquetrail(&["serve", "--help"], dir.path());
    assert!(String::from_utf8_lossy(&help.stdout).contains("TLS"));
}

/// The Insights fixture: 10 days of generated activity with two injected episodes (a call-rate
/// burst and an error spike, the generator's list being the expected answer), analysed by
/// `parquetrail insights`, plus one Insight delivered by CloudTrail whose attributions carry
/// hostile text. Built once per test process (the HTTP and the browser test share it), under the
/// target's temporary folder.
pub(crate) struct InsightsArchive {
    pub(crate) dir: std::path::PathBuf,
    /// `trail/injected-episodes.ndjson`.
    pub(crate) injected: Vec<Value>,
    /// Every API record of the input.
    pub(crate) events: Vec<Expected>,
    /// The delivered Insight's `Start` and `End` records.
    pub(crate) delivered: Vec<Value>,
}

pub(crate) const DELIVERED_ACCOUNT: &str = "256104666640";
pub(crate) const DELIVERED_SHARED_ID: &str = "0d1e1e2e-0000-4000-8000-00000000d311";

/// A CloudTrail-delivered Insight (the shape of those in the shared corpus): an API the activity
/// calls, on the 9th, 5 minutes long.
fn delivered_insight() -> Vec<Value> {
    let attributions = json!([
        {"attribute": "userIdentityArn",
         "insight": [{"value": SCRIPT, "average": 12.4}, {"value": "arn:aws:iam::256104666640:user/dev-0", "average": 1.0}],
         "baseline": [{"value": "arn:aws:iam::256104666640:user/dev-0", "average": 0.5}]},
        {"attribute": "userAgent",
         "insight": [{"value": IMG, "average": 13.4}],
         "baseline": [{"value": "console.amazonaws.com", "average": 0.5}]},
        {"attribute": "errorCode",
         "insight": [{"value": "null", "average": 13.4}],
         "baseline": [{"value": "null", "average": 0.5}]}
    ]);
    let record = |state: &str, time: &str, id: &str, average: f64, duration: Option<i64>| {
        let mut statistics =
            json!({"baseline": {"average": 0.5}, "insight": {"average": average}, "baselineDuration": 10080});
        if let Some(d) = duration {
            statistics["insightDuration"] = json!(d);
        }
        json!({
            "eventVersion": "1.07", "eventTime": time, "awsRegion": "us-east-1", "eventID": id,
            "eventType": "AwsCloudTrailInsight", "recipientAccountId": DELIVERED_ACCOUNT,
            "sharedEventID": DELIVERED_SHARED_ID,
            "insightDetails": {"state": state, "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                "insightType": "ApiCallRateInsight",
                "insightContext": {"statistics": statistics, "attributions": attributions}},
            "eventCategory": "Insight"
        })
    };
    vec![
        record("Start", "2024-03-09T03:00:00Z", "0d1e1e2e-0000-4000-8000-0000000057a7", 14.0, None),
        record("End", "2024-03-09T03:05:00Z", "0d1e1e2e-0000-4000-8000-000000000e0d", 13.4, Some(5)),
    ]
}

pub(crate) fn insights_archive() -> &'static InsightsArchive {
    static FIXTURE: std::sync::OnceLock<InsightsArchive> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-insights");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let run = |args: &[&str]| {
            let out = parquetrail(args, &dir);
            assert!(out.status.success(), "parquetrail {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        // 10 days: the 7-day baseline, then an episode a day from day 8 (measured: about 20 s to
        // generate, 20 s to convert and 15 s to analyse in a debug build).
        run(&[
            "generate",
            "trail",
            "--activity-days",
            "10",
            "--episodes",
            "2",
            "--accounts",
            "1",
            "--regions",
            "us-east-1",
            "--start",
            "2024-03-01",
            "--seed",
            "5",
        ]);
        let delivered = delivered_insight();
        let key = format!(
            "trail/AWSLogs/{DELIVERED_ACCOUNT}/CloudTrail-Insight/us-east-1/2024/03/09/\
             {DELIVERED_ACCOUNT}_CloudTrail-Insight_us-east-1_20240309T0310Z_delivered000000.json.gz"
        );
        write(&dir.join(key), &gzip(json!({ "Records": delivered }).to_string().as_bytes()));
        run(&["convert", "trail", "--out", "archive"]);
        run(&["insights", "archive", "--since", "2024-03-08", "--until", "2024-03-11"]);
        let injected = std::fs::read_to_string(dir.join("trail/injected-episodes.ndjson"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let events = read_trail(&dir.join("trail"), "CloudTrail");
        InsightsArchive { dir, injected, events, delivered }
    })
}

impl InsightsArchive {
    /// The reference rate of an injected episode's API from the input JSON: events per minute of
    /// each minute from `from` (inclusive), `minutes` of them. A call-rate Insight counts write
    /// management events, an error-rate one the events that returned its error code.
    pub(crate) fn per_minute(&self, insight: &Value, from: DateTime<Utc>, minutes: usize) -> Vec<u64> {
        let field = |k: &str| insight[k].as_str().map(str::to_string);
        let (account, region) = (field("account").unwrap(), field("region").unwrap());
        let (source, name) = (field("eventSource").unwrap(), field("eventName").unwrap());
        let error = field("errorCode");
        let call_rate = field("insightType").as_deref() == Some("ApiCallRateInsight");
        let mut counts = vec![0; minutes];
        for e in &self.events {
            let r = &e.record;
            let management = r.get("eventCategory").is_none_or(|c| c == "Management");
            let wanted = management
                && e.str("/recipientAccountId") == Some(account.as_str())
                && e.str("/awsRegion") == Some(region.as_str())
                && e.str("/eventSource") == Some(source.as_str())
                && e.str("/eventName") == Some(name.as_str())
                && if call_rate { r["readOnly"] == false } else { e.str("/errorCode") == error.as_deref() };
            let minute = (e.time - from).num_seconds().div_euclid(60);
            if wanted && (0..minutes as i64).contains(&minute) {
                counts[minute as usize] += 1;
            }
        }
        counts
    }
}

/// The listed Insight (from `/console/api/insights`) that reports the injected episode `e`: same
/// type, source, name and error code, starting within 5 minutes.
pub(crate) fn listed_for<'a>(listed: &'a [Value], e: &Value) -> Option<&'a Value> {
    listed.iter().find(|i| {
        i["computed"] == true
            && i["insight_type"] == e["insightType"]
            && i["event_source"] == e["eventSource"]
            && i["event_name"] == e["eventName"]
            && i["error_code"] == e["errorCode"]
            && (at(i["start"]["time"].as_str().unwrap()) - at(e["start"].as_str().unwrap())).num_seconds().abs() <= 300
    })
}

#[test]
fn console_insights_api_lists_both_kinds_with_their_rate() {
    let fixture = insights_archive();
    let served = Served::start(&fixture.dir, "archive", &[], Vec::new());
    let base = served.url.as_str();
    let range = [("start", "2024-03-08T00:00:00Z"), ("end", "2024-03-12T00:00:00Z")];
    let reply = get(base, &format!("/console/api/insights{}", query(&range)));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = reply.json();
    let listed = answer["insights"].as_array().unwrap().clone();
    assert_eq!(answer["query"]["dataset"], "insights");

    // Every injected episode is listed, as computed, and its rate is the input's per minute.
    assert_eq!(fixture.injected.len(), 2);
    for e in &fixture.injected {
        let insight = listed_for(&listed, e).unwrap_or_else(|| panic!("not listed: {e}\n{listed:#?}"));
        assert!(insight["source_key"].as_str().unwrap().starts_with("parquetrail-insights/"), "{insight}");
        assert!(insight["end"]["event_id"].is_string(), "{insight}");
        let series = insight["series"].as_object().unwrap();
        let pairs: Vec<(&str, &str)> = series.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
        let reply = get(base, &format!("/console/api/insights/series{}", query(&pairs)));
        assert_eq!(reply.status, 200, "{}", reply.text());
        let s = reply.json();
        assert_eq!(s["period_seconds"], 60);
        let points = s["points"].as_array().unwrap();
        let from = at(series["start"].as_str().unwrap());
        let minutes = (at(series["end"].as_str().unwrap()) - from).num_minutes() as usize;
        assert_eq!(points.len(), minutes, "a point a minute over the window");
        assert_eq!(at(points[0]["start"].as_str().unwrap()), from);
        let counts: Vec<u64> = points.iter().map(|p| p["count"].as_f64().unwrap() as u64).collect();
        assert_eq!(counts, fixture.per_minute(e, from, minutes), "{e}");
        // The episode's minutes hold the injected calls.
        let offset = (at(e["start"].as_str().unwrap()) - from).num_minutes() as usize;
        let injected = e["minutes"].as_u64().unwrap() as usize;
        assert!(counts[offset..offset + injected].iter().all(|n| *n >= e["perMinute"].as_u64().unwrap()), "{counts:?}");
        // Its Start record opens in event detail.
        let start_id = insight["start"]["event_id"].as_str().unwrap();
        let detail = get(base, &format!("/console/api/event{}", query(&[("id", start_id)]))).json();
        assert_eq!(detail["events"][0]["record"]["insightDetails"]["state"], "Start");
        assert_eq!(detail["events"][0]["record"]["eventID"], start_id);
    }

    // The delivered one: told apart, its statistics and attributions the End record's.
    let delivered = listed.iter().find(|i| i["shared_event_id"] == DELIVERED_SHARED_ID).expect("the delivered Insight");
    assert_eq!(delivered["computed"], false);
    let (start, end) = (&fixture.delivered[0], &fixture.delivered[1]);
    assert_eq!(delivered["start"]["event_id"], start["eventID"]);
    assert_eq!(delivered["end"]["event_id"], end["eventID"]);
    assert_eq!(delivered["statistics"], end["insightDetails"]["insightContext"]["statistics"]);
    assert_eq!(delivered["attributions"], end["insightDetails"]["insightContext"]["attributions"]);
    let detail = get(base, &format!("/console/api/event{}", query(&[("id", end["eventID"].as_str().unwrap())]))).json();
    assert_eq!(&detail["events"][0]["record"], end);
    assert!(listed.len() <= fixture.injected.len() + 2, "at most one Insight beyond the injected and delivered ones");

    // Newest first; the account and Region pickers narrow the list.
    let starts: Vec<DateTime<Utc>> = listed.iter().map(|i| at(i["start"]["time"].as_str().unwrap())).collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "{starts:?}");
    let other = get(base, &format!("/console/api/insights{}", query(&[("account", "000000000000")]))).json();
    assert_eq!(other["insights"], json!([]));
    let mut pairs = range.to_vec();
    pairs.push(("region", "us-east-1"));
    assert_eq!(
        get(base, &format!("/console/api/insights{}", query(&pairs))).json()["insights"].as_array().unwrap().len(),
        listed.len()
    );

    // Bad parameters: a 400 naming what is wrong, never a 500.
    let ok = "account=1&region=us-east-1&type=ApiCallRateInsight&source=s&name=n&start=2024-03-09T00:00:00Z&end=2024-03-09T01:00:00Z";
    for (target, names) in [
        ("/console/api/insights?start=yesterday".to_string(), "start"),
        ("/console/api/insights?attr=Username=x".to_string(), "attr"),
        ("/console/api/insights?start=2024-03-02&end=2024-03-01".to_string(), "start"),
        ("/console/api/insights/series".to_string(), "account"),
        (format!("/console/api/insights/series?{}", ok.replace("ApiCallRateInsight", "Bogus")), "type"),
        (format!("/console/api/insights/series?{ok}&period=7"), "period"),
        (format!("/console/api/insights/series?{}", ok.replace("01:00:00Z", "00:00:00Z")), "start"),
        (format!("/console/api/insights/series?{}", ok.replace("2024-03-09T01:00:00Z", "soon")), "end"),
        (format!("/console/api/insights/series?{}", ok.replace("2024-03-09T01:00:00Z", "2024-05-09T01:00:00Z")), "end"),
    ] {
        let reply = get(base, &target);
        assert_eq!(reply.status, 400, "{target}: {}", reply.text());
        assert!(reply.json()["error"].as_str().unwrap().contains(names), "{target}: {}", reply.text());
    }
    assert_eq!(get(base, "/insights").status, 200);
}
