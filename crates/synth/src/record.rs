//! One CloudTrail record, written as minified JSON text in CloudTrail's key order.

use crate::agent::{self, Origin};
use crate::body::{self, Call, Ctx, Extra, Target};
use crate::catalog::{EVENT_VERSIONS, SERVICES, Service};
use crate::identity::{self, Caller, INVOKERS, Kind, Pick, Who};
use crate::ids::{hash_str, mix2, push_hex_from, push_upper, push_uuid};
use crate::json::Json;
use crate::names::{self, EventInfo};
use crate::time::push_iso;

/// Per-record knobs decided by the delivery schedule, not by the call itself.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Flags {
    /// The record is delivered hours or days after it happened.
    pub late: bool,
}

/// Writes records; owns scratch buffers so a record costs no allocations beyond a few ARNs.
#[derive(Debug, Default)]
pub(crate) struct RecordWriter {
    target: Target,
    extra: Extra,
    code: String,
    msg: String,
}

/// Roles that people assume in the console.
const CONSOLE_ROLES: &[&str] = &[
    "AWSReservedSSO_AdministratorAccess_",
    "AWSReservedSSO_ReadOnlyAccess_",
    "AWSReservedSSO_PowerUserAccess_",
    "Admin",
    "ReadOnly",
];

fn choose_caller<'a>(rng: &mut fastrand::Rng, ctx: &'a Ctx, svc: &Service, ev: &EventInfo) -> Pick<'a> {
    let mut p =
        Pick { kind: identity::pick_kind(rng), account: ctx.account, invoked_by: None, role: None, console: None };
    match (svc.ns, ev.name) {
        ("signin", _) => {
            p.console = Some(true);
            match rng.u8(0..20) {
                0..=9 => p.kind = Kind::IamUser,
                10..=16 => {
                    p.kind = Kind::AssumedRole;
                    p.role = Some(identity::role(CONSOLE_ROLES[rng.usize(0..CONSOLE_ROLES.len())]));
                }
                _ => p.kind = Kind::Root,
            }
        }
        ("sts", "AssumeRoleWithWebIdentity") => p.kind = Kind::WebIdentityUser,
        ("sts", "AssumeRoleWithSAML") => p.kind = Kind::SamlUser,
        ("sts", "AssumeRole") => match rng.u8(0..20) {
            0..=6 => {
                p.kind = Kind::AwsService;
                p.invoked_by = Some(
                    [
                        "lambda.amazonaws.com",
                        "ecs-tasks.amazonaws.com",
                        "ec2.amazonaws.com",
                        "config.amazonaws.com",
                        "glue.amazonaws.com",
                    ][rng.usize(0..5)],
                );
            }
            7..=15 => p.kind = Kind::AssumedRole,
            _ => p.kind = Kind::IamUser,
        },
        ("sts", "AssumeRoot") => {
            p.kind = if rng.bool() { Kind::IamUser } else { Kind::AssumedRole };
        }
        ("sso" | "identitystore", _) if rng.u8(0..4) != 0 => p.kind = Kind::IdentityCenterUser,
        ("cognito-idp", "InitiateAuth" | "RespondToAuthChallenge") => p.kind = Kind::Unknown,
        ("kms", "Decrypt" | "GenerateDataKey" | "Encrypt" | "ReEncrypt") => match rng.u8(0..20) {
            0..=6 => {
                p.kind = Kind::AwsService;
                p.invoked_by = Some(INVOKERS[rng.usize(0..INVOKERS.len())]);
            }
            7..=13 => {
                p.kind = Kind::AssumedRole;
                p.invoked_by = Some(INVOKERS[rng.usize(0..4)]);
            }
            _ => {
                if matches!(p.kind, Kind::Unknown | Kind::WebIdentityUser) {
                    p.kind = Kind::AssumedRole;
                }
            }
        },
        ("lambda", "Invoke") if rng.u8(0..5) < 2 => {
            p.kind = Kind::AwsService;
            p.invoked_by = Some(
                ["apigateway.amazonaws.com", "events.amazonaws.com", "s3.amazonaws.com", "sns.amazonaws.com"]
                    [rng.usize(0..4)],
            );
        }
        ("config", "PutEvaluations") => {
            p.kind = Kind::AssumedRole;
            p.role = Some(identity::role("AWSServiceRoleForConfig"));
        }
        ("autoscaling", _) if rng.u8(0..3) == 0 => {
            p.kind = Kind::AssumedRole;
            p.role = Some(identity::role("AWSServiceRoleForAutoScaling"));
        }
        _ => {
            if p.kind == Kind::AwsService {
                p.invoked_by = Some(INVOKERS[rng.usize(0..INVOKERS.len())]);
            }
            if p.kind == Kind::WebIdentityUser {
                // Web identities mostly appear on STS; elsewhere they act through roles.
                p.kind = Kind::AssumedRole;
            }
        }
    }
    // A few calls come from roles in other accounts of the organisation.
    if p.kind == Kind::AssumedRole && p.role.is_none() && !ctx.peers.is_empty() && rng.u8(0..25) == 0 {
        p.account = &ctx.peers[rng.usize(0..ctx.peers.len())];
        p.role = Some(identity::role(if rng.bool() { "OrganizationAccountAccessRole" } else { "security-audit" }));
    }
    p
}

fn push_host(out: &mut String, svc: &Service, ctx: &Ctx, t: &Target) {
    match svc.ns {
        "s3" if !t.name.is_empty() => {
            out.push_str(&t.name);
            out.push_str(".s3.");
            out.push_str(ctx.region);
            out.push_str(".amazonaws.com");
        }
        "signin" => out.push_str("signin.aws.amazon.com"),
        "iam" | "organizations" | "route53" | "cloudfront" | "ce" | "support" => out.push_str(svc.source),
        _ => {
            out.push_str(svc.source.trim_end_matches(".amazonaws.com"));
            out.push('.');
            out.push_str(ctx.region);
            out.push_str(".amazonaws.com");
        }
    }
}

impl RecordWriter {
    /// Appends one record (an object, comma-separated from a previous one by `j`).
    pub(crate) fn write(&mut self, j: &mut Json, rng: &mut fastrand::Rng, ctx: &Ctx, flags: Flags) {
        let (si, ei) = names::pick_event(rng);
        self.write_event(j, rng, ctx, flags, si, ei);
    }

    /// Appends the record for catalog entry `(si, ei)`.
    pub(crate) fn write_event(
        &mut self,
        j: &mut Json,
        rng: &mut fastrand::Rng,
        ctx: &Ctx,
        flags: Flags,
        si: usize,
        ei: usize,
    ) {
        let svc = &SERVICES[si];
        let ev = &names::events()[si][ei];
        let version = if rng.u8(0..10) < 6 { svc.version } else { rng.u8(0..4) };
        let pick = choose_caller(rng, ctx, svc, ev);

        j.open();
        j.kv("eventVersion", EVENT_VERSIONS[version as usize]);
        let caller = if ev.service_event {
            j.obj("userIdentity");
            j.kv("accountId", ctx.account);
            j.kv("invokedBy", svc.source);
            j.close();
            Caller {
                kind: Kind::AwsService,
                arn: String::new(),
                account: ctx.account.to_owned(),
                invoked_by: Some(svc.source),
                role_use: None,
                console: false,
                index: 0,
            }
        } else {
            let who = Who {
                account: ctx.account,
                account_hash: ctx.account_hash,
                event_secs: ctx.event_secs,
                region: ctx.region,
                mgmt_account: ctx.mgmt_account,
                future_field: rng.u16(0..1000) == 0,
            };
            identity::write(j, rng, &who, &pick)
        };
        j.kv_with("eventTime", |b| push_iso(b, ctx.event_secs));
        j.kv("eventSource", svc.source);
        j.kv("eventName", ev.name);
        j.kv("awsRegion", ctx.region);
        let origin = if ev.service_event { Origin::Internal } else { agent::origin(rng, &caller) };
        // A principal calls from a few stable addresses with a few stable clients, so both are
        // drawn from a generator seeded by the caller (and one of three variants).
        let caller_seed = hash_str(&caller.arn) ^ hash_str(caller.invoked_by.unwrap_or(""));
        let mut crng = fastrand::Rng::with_seed(mix2(caller_seed, rng.u64(0..3)));
        let person = caller.index;
        j.kv_with("sourceIPAddress", |b| agent::push_ip(b, &mut crng, origin, ctx.account_hash, person));
        j.kv_with("userAgent", |b| agent::push_user_agent(b, &mut crng, &caller, origin, svc.ns, ev.name));

        body::pick_target(rng, ctx, svc, ev, &caller, &mut self.target);
        let error = if ev.service_event {
            false
        } else if svc.ns == "signin" {
            rng.u8(0..8) == 0
        } else {
            rng.u16(0..1000) < if caller.kind == Kind::AwsService { 15 } else { 75 }
        };
        let call = Call { svc, ev, ctx, caller: &caller, target: &self.target, error };
        if error {
            if svc.ns == "signin" {
                j.kv("errorMessage", "Failed authentication");
            } else {
                self.code.clear();
                self.msg.clear();
                body::error(rng, &call, &mut self.code, &mut self.msg);
                j.kv("errorCode", &self.code);
                j.kv_raw("errorMessage", &self.msg);
            }
        }
        self.extra.clear();
        body::write(j, rng, &call, &mut self.extra);

        let x = &self.extra;
        if !x.no_request_id {
            if x.s3_request_id {
                j.kv_with("requestID", |b| push_upper(b, rng, 16));
            } else {
                j.kv_with("requestID", |b| push_uuid(b, rng));
            }
        }
        j.kv_with("eventID", |b| push_uuid(b, rng));
        j.kv_bool("readOnly", ev.read_only);
        if !x.resources.buf.is_empty() {
            j.arr("resources");
            j.buf.push_str(&x.resources.buf);
            j.close_arr();
        }
        j.kv(
            "eventType",
            if ev.service_event {
                "AwsServiceEvent"
            } else if svc.ns == "signin" {
                "AwsConsoleSignIn"
            } else {
                "AwsApiCall"
            },
        );
        if let Some(v) = svc.api_version {
            j.kv("apiVersion", v);
        }
        j.kv_bool("managementEvent", !ev.data);
        j.kv("recipientAccountId", ctx.account);
        if x.shared || caller.account != ctx.account {
            j.kv_with("sharedEventID", |b| push_uuid(b, rng));
        }
        if !x.details.buf.is_empty() {
            j.key("serviceEventDetails");
            j.raw_num(&x.details.buf);
        }
        if origin == Origin::VpcEndpoint {
            j.kv_with("vpcEndpointId", |b| {
                b.push_str("vpce-0");
                push_hex_from(b, mix2(ctx.account_hash, si as u64), 16);
            });
            if version >= 1 {
                j.kv("vpcEndpointAccountId", ctx.account);
            }
        }
        if rng.u16(0..1000) == 0 {
            // A field no current schema knows, to exercise lossless handling downstream.
            j.obj("eventAnnotation");
            j.kv("source", "future-field");
            j.kv_u64("rev", 3);
            j.close();
        }
        j.kv("eventCategory", if ev.data { "Data" } else { "Management" });
        if !matches!(origin, Origin::Service(_) | Origin::Internal) && rng.u8(0..20) != 0 {
            j.obj("tlsDetails");
            let tls13 = rng.u8(0..10) < 7;
            j.kv("tlsVersion", if tls13 { "TLSv1.3" } else { "TLSv1.2" });
            j.kv("cipherSuite", if tls13 { "TLS_AES_128_GCM_SHA256" } else { "ECDHE-RSA-AES128-GCM-SHA256" });
            let t = &self.target;
            j.kv_with("clientProvidedHostHeader", |b| push_host(b, svc, ctx, t));
            if version == 3 && tls13 {
                j.kv("keyExchange", if rng.u8(0..3) == 0 { "x25519" } else { "X25519MLKEM768" });
            }
            j.close();
        }
        if caller.console && svc.ns != "signin" && caller.kind != Kind::Root {
            j.kv("sessionCredentialFromConsole", "true");
        }
        if flags.late && rng.u8(0..3) == 0 {
            j.obj("addendum");
            j.kv("reason", "DELIVERY_DELAY");
            j.close();
        } else if rng.u16(0..2000) == 0 {
            j.obj("addendum");
            j.kv("reason", "UPDATED_DATA");
            j.kv("updatedFields", "responseElements");
            j.kv_with("originalRequestID", |b| push_uuid(b, rng));
            j.kv_with("originalEventID", |b| push_uuid(b, rng));
            j.close();
        }
        j.close();
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    /// Records written per catalog entry: enough that most entries also get an error.
    const PER_EVENT: usize = 24;

    /// SHA-256 (hex) of [`PER_EVENT`] records of every catalog entry, in catalog order.
    ///
    /// Taken from the generator before `body.rs` was split into per-service modules (the split
    /// kept it), then changed once on purpose (CloudWatch metrics bodies reached, resource types
    /// spelled as CloudFormation spells them). The pinned tree of the integration tests does not
    /// reach every hand-written body (rare service events), this does. It must change only with
    /// a deliberate change of output.
    const PINNED_SHA256: &str = "e8a56f36add1c0f21d6a33e1154e836226e1712155bad4fbd23e4a3d56942448";

    #[test]
    fn every_catalog_entry_writes_the_pinned_bytes() {
        let peers: Vec<String> = ["111122223333", "444455556666", "777788889999"].map(String::from).to_vec();
        let ctx = Ctx {
            account: &peers[1],
            account_hash: hash_str(&peers[1]),
            region: "eu-central-1",
            event_secs: 1_709_337_600,
            peers: &peers,
            mgmt_account: &peers[0],
        };
        let mut rng = fastrand::Rng::with_seed(0xB0D7);
        let (mut w, mut j, mut h) = (RecordWriter::default(), Json::with_capacity(1 << 16), Sha256::new());
        let (mut records, mut errors) = (0usize, 0usize);
        for (si, events) in names::events().iter().enumerate() {
            for (ei, ev) in events.iter().enumerate() {
                for n in 0..PER_EVENT {
                    j.clear();
                    let flags = Flags { late: n % 8 == 0 };
                    w.write_event(&mut j, &mut rng, &ctx, flags, si, ei);
                    let v: serde_json::Value = serde_json::from_str(&j.buf)
                        .unwrap_or_else(|e| panic!("{}/{}: {e}: {}", SERVICES[si].ns, ev.name, j.buf));
                    assert_eq!(v["eventName"], ev.name);
                    records += 1;
                    errors += usize::from(v.get("errorCode").is_some());
                    h.update(j.buf.as_bytes());
                    h.update(b"\n");
                }
            }
        }
        assert!(records >= 500 * PER_EVENT, "{records} records");
        assert!(errors > records / 40, "{errors} errors in {records} records");
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, PINNED_SHA256, "{records} records, {errors} errors");
    }
}
