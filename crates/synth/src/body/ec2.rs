//! EC2 calls: instances, security groups, tags, spot prices.

use crate::ids::{mix, mix2, push_hex, push_hex_from, push_uuid};
use crate::json::{Json, push_u64};

use super::{Call, Extra, arn, generic, tags};

/// EC2 bodies; calls without a hand-written one get the generic body.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "DescribeInstances" => {
            j.obj("requestParameters");
            j.obj("instancesSet");
            if rng.bool() {
                j.arr("items");
                for _ in 0..rng.usize(1..4) {
                    j.open();
                    j.kv_raw("instanceId", &c.target.name);
                    j.close();
                }
                j.close_arr();
            }
            j.close();
            j.obj("filterSet");
            if rng.bool() {
                j.arr("items");
                j.open();
                j.kv("name", "tag:Name");
                j.obj("valueSet");
                j.arr("items");
                j.open();
                j.kv("value", ["web-*", "batch-worker", "bastion"][rng.usize(0..3)]);
                j.close();
                j.close_arr();
                j.close();
                j.close();
                j.open();
                j.kv("name", "instance-state-name");
                j.obj("valueSet");
                j.arr("items");
                j.open();
                j.kv("value", "running");
                j.close();
                j.close_arr();
                j.close();
                j.close();
                j.close_arr();
            }
            j.close();
            j.close();
            j.kv_null("responseElements");
        }
        "RunInstances" => run_instances(j, rng, c, x),
        "AuthorizeSecurityGroupIngress" | "RevokeSecurityGroupIngress" => {
            let port = [443u64, 22, 5432, 8080, 3389][rng.usize(0..5)];
            j.obj("requestParameters");
            j.kv_raw("groupId", &c.target.name);
            j.obj("ipPermissions");
            j.arr("items");
            j.open();
            j.kv("ipProtocol", "tcp");
            j.kv_u64("fromPort", port);
            j.kv_u64("toPort", port);
            j.kv_empty_obj("groups");
            j.obj("ipRanges");
            j.arr("items");
            j.open();
            j.kv("cidrIp", if port == 443 { "0.0.0.0/0" } else { "10.0.0.0/8" });
            j.kv_raw("description", "Allow \\\"internal\\\" traffic\\n(ticket SEC-1142)");
            j.close();
            j.close_arr();
            j.close();
            j.kv_empty_obj("ipv6Ranges");
            j.kv_empty_obj("prefixListIds");
            j.close();
            j.close_arr();
            j.close();
            j.close();
            if c.error {
                j.kv_null("responseElements");
            } else {
                j.obj("responseElements");
                j.kv_with("requestId", |b| push_uuid(b, rng));
                j.kv_bool("_return", true);
                j.obj("securityGroupRuleSet");
                j.arr("items");
                j.open();
                j.kv("groupOwnerId", c.ctx.account);
                j.kv_raw("groupId", &c.target.name);
                j.kv_with("securityGroupRuleId", |b| {
                    b.push_str("sgr-0");
                    push_hex(b, rng, 16);
                });
                j.kv_bool("isEgress", false);
                j.kv("ipProtocol", "tcp");
                j.kv_u64("fromPort", port);
                j.kv_u64("toPort", port);
                j.kv("cidrIpv4", if port == 443 { "0.0.0.0/0" } else { "10.0.0.0/8" });
                j.close();
                j.close_arr();
                j.close();
                j.close();
            }
        }
        "CreateTags" => {
            j.obj("requestParameters");
            j.obj("resourcesSet");
            j.arr("items");
            j.open();
            j.kv_raw("resourceId", &c.target.name);
            j.close();
            j.close_arr();
            j.close();
            ec2_tags(j, rng);
            j.close();
            ec2_return(j, rng, c);
        }
        "DescribeSpotPriceHistory" => {
            j.obj("requestParameters");
            j.kv_u64("startTime", (c.ctx.event_secs as u64 - 3600) * 1000);
            j.obj("instanceTypeSet");
            j.arr("items");
            for t in ["c7g.xlarge", "m7g.large", "r6i.2xlarge"].iter().take(rng.usize(1..4)) {
                j.open();
                j.kv("instanceType", t);
                j.close();
            }
            j.close_arr();
            j.close();
            j.obj("productDescriptionSet");
            j.arr("items");
            j.open();
            j.kv("productDescription", "Linux/UNIX");
            j.close();
            j.close_arr();
            j.close();
            j.close();
            j.kv_null("responseElements");
        }
        "StartInstances" | "StopInstances" | "TerminateInstances" => {
            j.obj("requestParameters");
            j.obj("instancesSet");
            j.arr("items");
            j.open();
            j.kv_raw("instanceId", &c.target.name);
            j.close();
            j.close_arr();
            j.close();
            if ev.name == "StopInstances" {
                j.kv_bool("force", false);
            }
            j.close();
            if c.error {
                j.kv_null("responseElements");
            } else {
                let (cur, code, prev, pcode) = match ev.name {
                    "StartInstances" => ("pending", 0, "stopped", 80),
                    "StopInstances" => ("stopping", 64, "running", 16),
                    _ => ("shutting-down", 32, "running", 16),
                };
                j.obj("responseElements");
                j.kv_with("requestId", |b| push_uuid(b, rng));
                j.obj("instancesSet");
                j.arr("items");
                j.open();
                j.kv_raw("instanceId", &c.target.name);
                j.obj("currentState");
                j.kv_u64("code", code);
                j.kv("name", cur);
                j.close();
                j.obj("previousState");
                j.kv_u64("code", pcode);
                j.kv("name", prev);
                j.close();
                j.close();
                j.close_arr();
                j.close();
                j.close();
            }
        }
        _ => generic::write(j, rng, c, x),
    }
}

fn ec2_tags(j: &mut Json, rng: &mut fastrand::Rng) {
    j.obj("tagSet");
    tags(j, rng, "items", "key", "value");
    j.close();
}

fn ec2_return(j: &mut Json, rng: &mut fastrand::Rng, c: &Call) {
    if c.error {
        j.kv_null("responseElements");
    } else {
        j.obj("responseElements");
        j.kv_with("requestId", |b| push_uuid(b, rng));
        j.kv_bool("_return", true);
        j.close();
    }
}

fn run_instances(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let count = if rng.u8(0..5) == 0 { rng.u64(2..6) } else { 1 };
    let itype = ["m7g.large", "c7g.xlarge", "t3.micro", "r6i.2xlarge", "g5.xlarge"][rng.usize(0..5)];
    let az = (b'a' + rng.u8(0..3)) as char;
    let ami_seed = mix2(c.ctx.account_hash, 0xA31);
    j.obj("requestParameters");
    j.obj("instancesSet");
    j.arr("items");
    j.open();
    j.kv_with("imageId", |b| {
        b.push_str("ami-0");
        push_hex_from(b, ami_seed, 16);
    });
    j.kv_u64("minCount", count);
    j.kv_u64("maxCount", count);
    j.close();
    j.close_arr();
    j.close();
    j.kv("instanceType", itype);
    j.kv_empty_obj("blockDeviceMapping");
    j.obj("monitoring");
    j.kv_bool("enabled", false);
    j.close();
    j.kv_bool("disableApiTermination", false);
    j.kv_bool("disableApiStop", false);
    j.kv_with("clientToken", |b| push_uuid(b, rng));
    j.obj("tagSpecificationSet");
    j.arr("items");
    j.open();
    j.kv("resourceType", "instance");
    tags(j, rng, "tags", "key", "value");
    j.close();
    j.close_arr();
    j.close();
    j.obj("launchTemplate");
    j.kv_with("launchTemplateId", |b| {
        b.push_str("lt-0");
        push_hex_from(b, mix(ami_seed), 16);
    });
    j.kv("version", "$Latest");
    j.close();
    j.close();
    if c.error {
        j.kv_null("responseElements");
        return;
    }
    let vpc = mix2(c.ctx.account_hash, 0x7BC);
    j.obj("responseElements");
    j.kv_with("requestId", |b| push_uuid(b, rng));
    j.kv_with("reservationId", |b| {
        b.push_str("r-0");
        push_hex(b, rng, 16);
    });
    j.kv("ownerId", c.ctx.account);
    j.kv_empty_obj("groupSet");
    j.obj("instancesSet");
    j.arr("items");
    for i in 0..count {
        let mut id = String::with_capacity(19);
        id.push_str("i-0");
        push_hex(&mut id, rng, 16);
        let ip = rng.u32(..);
        j.open();
        j.kv("instanceId", &id);
        j.kv_with("imageId", |b| {
            b.push_str("ami-0");
            push_hex_from(b, ami_seed, 16);
        });
        j.kv("currentInstanceBootMode", "uefi");
        j.obj("instanceState");
        j.kv_u64("code", 0);
        j.kv("name", "pending");
        j.close();
        j.kv_with("privateDnsName", |b| {
            b.push_str("ip-10-0-");
            push_u64(b, (ip & 0xFF) as u64);
            b.push('-');
            push_u64(b, (ip >> 8 & 0xFF) as u64);
            b.push_str(".ec2.internal");
        });
        j.kv_u64("amiLaunchIndex", i);
        j.kv_empty_obj("productCodes");
        j.kv("instanceType", itype);
        j.kv_u64("launchTime", c.ctx.event_secs as u64 * 1000);
        j.obj("placement");
        j.kv_with("availabilityZone", |b| {
            b.push_str(c.ctx.region);
            b.push(az);
        });
        j.kv("tenancy", "default");
        j.close();
        j.obj("monitoring");
        j.kv("state", "disabled");
        j.close();
        j.kv_with("subnetId", |b| {
            b.push_str("subnet-0");
            push_hex_from(b, mix(vpc ^ az as u64), 16);
        });
        j.kv_with("vpcId", |b| {
            b.push_str("vpc-0");
            push_hex_from(b, vpc, 16);
        });
        j.kv_with("privateIpAddress", |b| {
            b.push_str("10.0.");
            push_u64(b, (ip & 0xFF) as u64);
            b.push('.');
            push_u64(b, (ip >> 8 & 0xFF) as u64);
        });
        j.obj("stateReason");
        j.kv("code", "pending");
        j.kv("message", "pending");
        j.close();
        j.kv("architecture", if itype.contains('g') && !itype.starts_with('g') { "arm64" } else { "x86_64" });
        j.kv("rootDeviceType", "ebs");
        j.kv("rootDeviceName", "/dev/xvda");
        j.kv_empty_obj("blockDeviceMapping");
        j.kv("virtualizationType", "hvm");
        j.kv("hypervisor", "xen");
        ec2_tags(j, rng);
        j.obj("groupSet");
        j.arr("items");
        j.open();
        j.kv_with("groupId", |b| {
            b.push_str("sg-0");
            push_hex_from(b, mix(vpc ^ 0x56), 16);
        });
        j.kv("groupName", "default");
        j.close();
        j.close_arr();
        j.close();
        j.kv_bool("sourceDestCheck", true);
        j.obj("networkInterfaceSet");
        j.arr("items");
        j.open();
        j.kv_with("networkInterfaceId", |b| {
            b.push_str("eni-0");
            push_hex(b, rng, 16);
        });
        j.kv("status", "in-use");
        j.kv("ownerId", c.ctx.account);
        j.kv("interfaceType", "interface");
        j.kv_bool("sourceDestCheck", true);
        j.obj("attachment");
        j.kv_with("attachmentId", |b| {
            b.push_str("eni-attach-0");
            push_hex(b, rng, 16);
        });
        j.kv_u64("deviceIndex", 0);
        j.kv_u64("networkCardIndex", 0);
        j.kv("status", "attaching");
        j.kv_u64("attachTime", c.ctx.event_secs as u64 * 1000);
        j.kv_bool("deleteOnTermination", true);
        j.close();
        j.close();
        j.close_arr();
        j.close();
        j.kv_bool("ebsOptimized", true);
        j.kv_bool("enaSupport", true);
        j.obj("cpuOptions");
        j.kv_u64("coreCount", 2);
        j.kv_u64("threadsPerCore", 1);
        j.close();
        j.obj("capacityReservationSpecification");
        j.kv("capacityReservationPreference", "open");
        j.close();
        j.obj("enclaveOptions");
        j.kv_bool("enabled", false);
        j.close();
        j.obj("metadataOptions");
        j.kv("state", "pending");
        j.kv("httpTokens", "required");
        j.kv_u64("httpPutResponseHopLimit", 2);
        j.kv("httpEndpoint", "enabled");
        j.kv("httpProtocolIpv4", "enabled");
        j.kv("httpProtocolIpv6", "disabled");
        j.kv("instanceMetadataTags", "disabled");
        j.close();
        j.obj("maintenanceOptions");
        j.kv("autoRecovery", "default");
        j.close();
        j.close();
        x.resources.open();
        x.resources.kv("accountId", c.ctx.account);
        x.resources.kv("type", "AWS::EC2::Instance");
        x.resources.kv_with("ARN", |b| arn(b, "ec2", c.ctx.region, c.ctx.account, "instance/", &id));
        x.resources.close();
    }
    j.close_arr();
    j.close();
    j.close();
}
