//! `sourceIPAddress` and `userAgent` values: who a caller is decides where it calls from and with
//! which client, so these are drawn from the caller, not independently.

use crate::identity::{Caller, Kind, RoleUse};
use crate::ids::mix2;
use crate::json::push_u64;

/// Where a call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// An AWS service acting for the caller: IP and agent are the service's host name.
    Service(&'static str),
    /// The literal `AWS Internal`.
    Internal,
    /// A person's network (office or home), IPv4 or IPv6.
    Person,
    /// A workload on AWS public IPs.
    Workload,
    /// A workload inside a VPC reaching the service through an interface endpoint.
    VpcEndpoint,
}

/// Decides the origin for a caller.
pub(crate) fn origin(rng: &mut fastrand::Rng, c: &Caller) -> Origin {
    if let Some(s) = c.invoked_by {
        return Origin::Service(s);
    }
    if rng.u16(0..1000) < 8 {
        return Origin::Internal;
    }
    if c.console {
        return Origin::Person;
    }
    match (c.kind, c.role_use) {
        (Kind::AssumedRole, Some(u)) => match u {
            RoleUse::Sso | RoleUse::Saml | RoleUse::CrossAccount => Origin::Person,
            RoleUse::Ci => Origin::Workload,
            _ if rng.u8(0..10) < 3 => Origin::VpcEndpoint,
            _ => Origin::Workload,
        },
        (Kind::IamUser, _) if c.index % 2 == 1 => {
            // Odd users are automation keys running on servers.
            if rng.u8(0..4) == 0 { Origin::VpcEndpoint } else { Origin::Workload }
        }
        _ => Origin::Person,
    }
}

/// Appends the `sourceIPAddress` for an origin.
pub(crate) fn push_ip(out: &mut String, rng: &mut fastrand::Rng, o: Origin, account_hash: u64, person: usize) {
    match o {
        Origin::Service(s) => out.push_str(s),
        Origin::Internal => out.push_str("AWS Internal"),
        Origin::Person => {
            // Each person has a couple of stable addresses; some networks are IPv6.
            let h = mix2(account_hash ^ 0x1F, (person as u64) << 1 | rng.u64(0..2));
            if h.is_multiple_of(5) {
                out.push_str("2001:db8:");
                for i in 0..6 {
                    if i > 0 {
                        out.push(':');
                    }
                    crate::ids::push_hex_from(out, (h >> (i * 10)) & 0xFFFF, 4);
                }
            } else {
                let first = [198u64, 203, 81, 93, 151, 185, 24, 71][(h % 8) as usize];
                push_u64(out, first);
                for i in 1..4 {
                    out.push('.');
                    push_u64(out, (h >> (i * 8)) & 0xFF);
                }
            }
        }
        Origin::Workload => {
            let v = rng.u32(..);
            let first = [3u32, 18, 34, 35, 44, 52, 54, 13][(v & 7) as usize];
            push_u64(out, first as u64);
            for i in 1..4 {
                out.push('.');
                push_u64(out, ((v >> (i * 8)) & 0xFF) as u64);
            }
        }
        Origin::VpcEndpoint => {
            out.push_str("10.");
            push_u64(out, rng.u64(0..4));
            out.push('.');
            push_u64(out, rng.u64(0..256));
            out.push('.');
            push_u64(out, rng.u64(1..255));
        }
    }
}

const BROWSERS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.66",
];

fn v3(out: &mut String, rng: &mut fastrand::Rng, major: u64, minor: std::ops::Range<u64>, patch: u64) {
    push_u64(out, major);
    out.push('.');
    push_u64(out, rng.u64(minor));
    out.push('.');
    push_u64(out, rng.u64(0..patch));
}

/// Appends a `userAgent` matching the caller and origin. `api` is the service namespace and
/// `op` the operation, which several SDKs embed in their agent strings.
pub(crate) fn push_user_agent(out: &mut String, rng: &mut fastrand::Rng, c: &Caller, o: Origin, api: &str, op: &str) {
    match o {
        Origin::Service(s) => {
            if rng.u8(0..4) == 0 {
                out.push_str("AWS Internal");
            } else {
                out.push_str(s);
            }
            return;
        }
        Origin::Internal => {
            out.push_str("AWS Internal");
            return;
        }
        _ => {}
    }
    if c.console {
        match rng.u8(0..6) {
            0 => out.push_str("AWS Internal"),
            1 => {
                out.push('[');
                out.push_str(BROWSERS[rng.usize(0..BROWSERS.len())]);
                out.push(']');
            }
            _ => out.push_str(BROWSERS[rng.usize(0..BROWSERS.len())]),
        }
        return;
    }
    let flavour = match (c.kind, c.role_use) {
        (Kind::AssumedRole, Some(RoleUse::Lambda)) => {
            if rng.bool() {
                0
            } else {
                4
            }
        }
        (Kind::AssumedRole, Some(RoleUse::Ci)) => 2,
        (Kind::AssumedRole, Some(RoleUse::Irsa | RoleUse::Ecs)) => 3,
        (Kind::AssumedRole, Some(RoleUse::Ec2 | RoleUse::Glue)) => 5,
        (Kind::WebIdentityUser, _) => 6,
        (Kind::AssumedRole, _) => rng.u8(0..6) as i32,
        // People and long-lived keys use the CLI, Terraform or a server SDK.
        _ => [1, 1, 2, 3, 5][rng.usize(0..5)],
    };
    match flavour {
        0 => {
            out.push_str("Boto3/");
            let ver_start = out.len();
            v3(out, rng, 1, 28..35, 90);
            let botocore = out[ver_start..].to_owned();
            out.push_str(" md/Botocore#");
            out.push_str(&botocore);
            out.push_str(" ua/2.0 os/linux#5.10.213-201.855.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/");
            out.push_str(&botocore);
        }
        1 => {
            out.push_str("aws-cli/2.");
            push_u64(out, rng.u64(13..18));
            out.push('.');
            push_u64(out, rng.u64(0..40));
            out.push_str(match rng.u8(0..3) {
                0 => " Python/3.11.8 Darwin/23.3.0 exe/x86_64 prompt/off command/",
                1 => " Python/3.11.8 Linux/6.1.79-99.167.amzn2023.x86_64 exe/x86_64.amzn.2023 prompt/off command/",
                _ => " Python/3.11.6 Windows/10 exe/AMD64 prompt/off command/",
            });
            out.push_str(api);
            out.push('.');
            // aws-cli spells the operation in kebab case.
            for (i, ch) in op.chars().enumerate() {
                if ch.is_ascii_uppercase() {
                    if i > 0 {
                        out.push('-');
                    }
                    out.push(ch.to_ascii_lowercase());
                } else if ch.is_ascii_alphabetic() {
                    out.push(ch);
                }
            }
        }
        2 => {
            out.push_str("APN/1.0 HashiCorp/1.0 Terraform/1.");
            push_u64(out, rng.u64(5..9));
            out.push('.');
            push_u64(out, rng.u64(0..6));
            out.push_str(" terraform-provider-aws/5.");
            push_u64(out, rng.u64(30..45));
            out.push_str(".0 aws-sdk-go-v2/1.25.3 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/");
            out.push_str(api);
            out.push_str("#1.");
            push_u64(out, rng.u64(10..160));
            out.push_str(".1");
        }
        3 => {
            out.push_str("aws-sdk-go-v2/1.");
            push_u64(out, rng.u64(20..27));
            out.push_str(".2 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/");
            out.push_str(api);
            out.push_str("#1.");
            push_u64(out, rng.u64(10..160));
            out.push_str(".0");
        }
        4 => {
            out.push_str("aws-sdk-js/3.");
            push_u64(out, rng.u64(450..540));
            out.push_str(".0 ua/2.0 os/linux#5.10.213-201.855.amzn2.x86_64 lang/js md/nodejs#20.11.1 api/");
            out.push_str(api);
            out.push_str("#3.");
            push_u64(out, rng.u64(450..540));
            out.push_str(".0 exec-env/AWS_Lambda_nodejs20.x");
        }
        5 => {
            out.push_str("aws-sdk-java/2.");
            push_u64(out, rng.u64(20..26));
            out.push('.');
            push_u64(out, rng.u64(0..40));
            out.push_str(" Linux/5.10.210-201.852.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. md/internal io/sync http/Apache cfg/retry-mode/legacy");
        }
        _ => {
            out.push_str(if rng.bool() {
                "aws-sdk-iOS/2.33.4 iOS/17.3.1 en_US"
            } else {
                "aws-amplify/6.0.17 auth/4 framework/2 Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.64 Mobile Safari/537.36"
            });
        }
    }
}
