//! EC2 calls: instances, security groups, tags, spot prices.

use crate::ids::{mix, mix2, push_hex, push_hex_from};
use crate::json::Json;

use super::{Call, Extra, arn, generic, hex_id, push_private_dns, push_private_ip, response, tags, uuid};

/// EC2 bodies; calls without a hand-written one get the generic body.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let name = c.ev.name;
    let t = c.target;
    match name {
        "DescribeInstances" => {
            j.object("requestParameters", |j| {
                j.object("instancesSet", |j| {
                    if rng.bool() {
                        j.array("items", |j| {
                            for _ in 0..rng.usize(1..4) {
                                j.element(|j| j.kv_raw("instanceId", &t.name));
                            }
                        });
                    }
                });
                j.object("filterSet", |j| {
                    if rng.bool() {
                        j.array("items", |j| {
                            filter(j, "tag:Name", ["web-*", "batch-worker", "bastion"][rng.usize(0..3)]);
                            filter(j, "instance-state-name", "running");
                        });
                    }
                });
            });
            j.kv_null("responseElements");
        }
        "RunInstances" => run_instances(j, rng, c, x),
        "AuthorizeSecurityGroupIngress" | "RevokeSecurityGroupIngress" => {
            let port = [443u64, 22, 5432, 8080, 3389][rng.usize(0..5)];
            let cidr = if port == 443 { "0.0.0.0/0" } else { "10.0.0.0/8" };
            j.object("requestParameters", |j| {
                j.kv_raw("groupId", &t.name);
                item(j, "ipPermissions", |j| {
                    j.kv("ipProtocol", "tcp");
                    j.kv_u64("fromPort", port);
                    j.kv_u64("toPort", port);
                    j.kv_empty_obj("groups");
                    item(j, "ipRanges", |j| {
                        j.kv("cidrIp", cidr);
                        j.kv_raw("description", "Allow \\\"internal\\\" traffic\\n(ticket SEC-1142)");
                    });
                    j.kv_empty_obj("ipv6Ranges");
                    j.kv_empty_obj("prefixListIds");
                });
            });
            response(j, c, |j| {
                uuid(j, rng, "requestId");
                j.kv_bool("_return", true);
                item(j, "securityGroupRuleSet", |j| {
                    j.kv("groupOwnerId", c.ctx.account);
                    j.kv_raw("groupId", &t.name);
                    hex_id(j, rng, "securityGroupRuleId", "sgr-0", 16);
                    j.kv_bool("isEgress", false);
                    j.kv("ipProtocol", "tcp");
                    j.kv_u64("fromPort", port);
                    j.kv_u64("toPort", port);
                    j.kv("cidrIpv4", cidr);
                });
            });
        }
        "CreateTags" => {
            j.object("requestParameters", |j| {
                item(j, "resourcesSet", |j| j.kv_raw("resourceId", &t.name));
                tag_set(j, rng);
            });
            response(j, c, |j| {
                uuid(j, rng, "requestId");
                j.kv_bool("_return", true);
            });
        }
        "DescribeSpotPriceHistory" => {
            j.object("requestParameters", |j| {
                j.kv_u64("startTime", (c.ctx.event_secs as u64 - 3600) * 1000);
                items(j, "instanceTypeSet", |j| {
                    for ty in ["c7g.xlarge", "m7g.large", "r6i.2xlarge"].iter().take(rng.usize(1..4)) {
                        j.element(|j| j.kv("instanceType", ty));
                    }
                });
                item(j, "productDescriptionSet", |j| j.kv("productDescription", "Linux/UNIX"));
            });
            j.kv_null("responseElements");
        }
        "StartInstances" | "StopInstances" | "TerminateInstances" => {
            j.object("requestParameters", |j| {
                item(j, "instancesSet", |j| j.kv_raw("instanceId", &t.name));
                if name == "StopInstances" {
                    j.kv_bool("force", false);
                }
            });
            let (cur, code, prev, pcode) = match name {
                "StartInstances" => ("pending", 0, "stopped", 80),
                "StopInstances" => ("stopping", 64, "running", 16),
                _ => ("shutting-down", 32, "running", 16),
            };
            response(j, c, |j| {
                uuid(j, rng, "requestId");
                item(j, "instancesSet", |j| {
                    j.kv_raw("instanceId", &t.name);
                    state(j, "currentState", code, cur);
                    state(j, "previousState", pcode, prev);
                });
            });
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// EC2's list shape: `"k":{"items":[…]}` with the elements `f` writes.
fn items(j: &mut Json, k: &str, f: impl FnOnce(&mut Json)) {
    j.object(k, |j| j.array("items", f));
}

/// A list of one: `"k":{"items":[{…}]}` with the members `f` writes.
fn item(j: &mut Json, k: &str, f: impl FnOnce(&mut Json)) {
    items(j, k, |j| j.element(f));
}

/// A `filterSet` element with one value.
fn filter(j: &mut Json, name: &str, value: &str) {
    j.element(|j| {
        j.kv("name", name);
        item(j, "valueSet", |j| j.kv("value", value));
    });
}

/// `"k":{"code":…,"name":…}`, an instance state.
fn state(j: &mut Json, k: &str, code: u64, name: &str) {
    j.object(k, |j| {
        j.kv_u64("code", code);
        j.kv("name", name);
    });
}

fn tag_set(j: &mut Json, rng: &mut fastrand::Rng) {
    j.object("tagSet", |j| tags(j, rng, "items", "key", "value"));
}

/// `"k":"<prefix><16 hex digits of seed>"`: an id that stays the same across calls.
fn seeded_id(j: &mut Json, k: &str, prefix: &str, seed: u64) {
    j.kv_with(k, |b| {
        b.push_str(prefix);
        push_hex_from(b, seed, 16);
    });
}

fn run_instances(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let count = if rng.u8(0..5) == 0 { rng.u64(2..6) } else { 1 };
    let itype = ["m7g.large", "c7g.xlarge", "t3.micro", "r6i.2xlarge", "g5.xlarge"][rng.usize(0..5)];
    let az = (b'a' + rng.u8(0..3)) as char;
    let ami_seed = mix2(c.ctx.account_hash, 0xA31);
    j.object("requestParameters", |j| {
        item(j, "instancesSet", |j| {
            seeded_id(j, "imageId", "ami-0", ami_seed);
            j.kv_u64("minCount", count);
            j.kv_u64("maxCount", count);
        });
        j.kv("instanceType", itype);
        j.kv_empty_obj("blockDeviceMapping");
        j.object("monitoring", |j| j.kv_bool("enabled", false));
        j.kv_bool("disableApiTermination", false);
        j.kv_bool("disableApiStop", false);
        uuid(j, rng, "clientToken");
        item(j, "tagSpecificationSet", |j| {
            j.kv("resourceType", "instance");
            tags(j, rng, "tags", "key", "value");
        });
        j.object("launchTemplate", |j| {
            seeded_id(j, "launchTemplateId", "lt-0", mix(ami_seed));
            j.kv("version", "$Latest");
        });
    });
    let vpc = mix2(c.ctx.account_hash, 0x7BC);
    response(j, c, |j| {
        uuid(j, rng, "requestId");
        hex_id(j, rng, "reservationId", "r-0", 16);
        j.kv("ownerId", c.ctx.account);
        j.kv_empty_obj("groupSet");
        items(j, "instancesSet", |j| {
            for i in 0..count {
                let mut id = String::with_capacity(19);
                id.push_str("i-0");
                push_hex(&mut id, rng, 16);
                let ip = rng.u32(..);
                j.element(|j| {
                    j.kv("instanceId", &id);
                    seeded_id(j, "imageId", "ami-0", ami_seed);
                    j.kv("currentInstanceBootMode", "uefi");
                    state(j, "instanceState", 0, "pending");
                    j.kv_with("privateDnsName", |b| push_private_dns(b, ip));
                    j.kv_u64("amiLaunchIndex", i);
                    j.kv_empty_obj("productCodes");
                    j.kv("instanceType", itype);
                    j.kv_u64("launchTime", c.ctx.event_secs as u64 * 1000);
                    j.object("placement", |j| {
                        j.kv_with("availabilityZone", |b| {
                            b.push_str(c.ctx.region);
                            b.push(az);
                        });
                        j.kv("tenancy", "default");
                    });
                    j.object("monitoring", |j| j.kv("state", "disabled"));
                    seeded_id(j, "subnetId", "subnet-0", mix(vpc ^ az as u64));
                    seeded_id(j, "vpcId", "vpc-0", vpc);
                    j.kv_with("privateIpAddress", |b| push_private_ip(b, ip));
                    j.object("stateReason", |j| {
                        j.kv("code", "pending");
                        j.kv("message", "pending");
                    });
                    let arm = itype.contains('g') && !itype.starts_with('g');
                    j.kv("architecture", if arm { "arm64" } else { "x86_64" });
                    j.kv("rootDeviceType", "ebs");
                    j.kv("rootDeviceName", "/dev/xvda");
                    j.kv_empty_obj("blockDeviceMapping");
                    j.kv("virtualizationType", "hvm");
                    j.kv("hypervisor", "xen");
                    tag_set(j, rng);
                    item(j, "groupSet", |j| {
                        seeded_id(j, "groupId", "sg-0", mix(vpc ^ 0x56));
                        j.kv("groupName", "default");
                    });
                    j.kv_bool("sourceDestCheck", true);
                    item(j, "networkInterfaceSet", |j| {
                        hex_id(j, rng, "networkInterfaceId", "eni-0", 16);
                        j.kv("status", "in-use");
                        j.kv("ownerId", c.ctx.account);
                        j.kv("interfaceType", "interface");
                        j.kv_bool("sourceDestCheck", true);
                        j.object("attachment", |j| {
                            hex_id(j, rng, "attachmentId", "eni-attach-0", 16);
                            j.kv_u64("deviceIndex", 0);
                            j.kv_u64("networkCardIndex", 0);
                            j.kv("status", "attaching");
                            j.kv_u64("attachTime", c.ctx.event_secs as u64 * 1000);
                            j.kv_bool("deleteOnTermination", true);
                        });
                    });
                    j.kv_bool("ebsOptimized", true);
                    j.kv_bool("enaSupport", true);
                    j.object("cpuOptions", |j| {
                        j.kv_u64("coreCount", 2);
                        j.kv_u64("threadsPerCore", 1);
                    });
                    j.object("capacityReservationSpecification", |j| j.kv("capacityReservationPreference", "open"));
                    j.object("enclaveOptions", |j| j.kv_bool("enabled", false));
                    j.object("metadataOptions", |j| {
                        j.kv("state", "pending");
                        j.kv("httpTokens", "required");
                        j.kv_u64("httpPutResponseHopLimit", 2);
                        j.kv("httpEndpoint", "enabled");
                        j.kv("httpProtocolIpv4", "enabled");
                        j.kv("httpProtocolIpv6", "disabled");
                        j.kv("instanceMetadataTags", "disabled");
                    });
                    j.object("maintenanceOptions", |j| j.kv("autoRecovery", "default"));
                });
                x.resources.element(|r| {
                    r.kv("accountId", c.ctx.account);
                    r.kv("type", "AWS::EC2::Instance");
                    r.kv_with("ARN", |b| arn(b, "ec2", c.ctx.region, c.ctx.account, "instance/", &id));
                });
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use crate::body::testing::{ACCOUNT, REGION, call, call_where};

    #[test]
    fn run_instances_lists_every_launched_instance() {
        let w = call_where("ec2", "RunInstances", false, |w| {
            w.body["requestParameters"]["instancesSet"]["items"][0]["minCount"].as_u64() > Some(1)
        });
        let count = w.body["requestParameters"]["instancesSet"]["items"][0]["minCount"].as_u64().unwrap();
        let items = w.body["responseElements"]["instancesSet"]["items"].as_array().expect("instances");
        assert_eq!(items.len() as u64, count);
        assert_eq!(w.resources.len() as u64, count);
        for (item, res) in items.iter().zip(&w.resources) {
            let id = item["instanceId"].as_str().expect("instanceId");
            assert!(id.starts_with("i-0") && id.len() == 19, "{id}");
            assert_eq!(res["type"], "AWS::EC2::Instance");
            assert_eq!(res["ARN"], format!("arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{id}"));
            assert!(item["placement"]["availabilityZone"].as_str().unwrap().starts_with(REGION));
            let ip = item["privateIpAddress"].as_str().unwrap();
            let dns = item["privateDnsName"].as_str().unwrap();
            assert_eq!(dns, format!("ip-{}.ec2.internal", ip.replace('.', "-")));
        }
        let failed = call("ec2", "RunInstances", 0, true);
        assert!(failed.body["responseElements"].is_null());
        assert!(failed.resources.is_empty());
    }

    #[test]
    fn security_group_rule_opens_one_port() {
        let w = call("ec2", "AuthorizeSecurityGroupIngress", 2, false);
        let perm = &w.body["requestParameters"]["ipPermissions"]["items"][0];
        assert_eq!(perm["fromPort"], perm["toPort"]);
        assert_eq!(w.body["requestParameters"]["groupId"], w.name());
        let rule = &w.body["responseElements"]["securityGroupRuleSet"]["items"][0];
        assert_eq!(rule["fromPort"], perm["fromPort"]);
        assert_eq!(rule["cidrIpv4"], perm["ipRanges"]["items"][0]["cidrIp"]);
        assert_eq!(rule["groupOwnerId"], ACCOUNT);
    }

    #[test]
    fn stop_instances_reports_the_state_change() {
        let w = call("ec2", "StopInstances", 0, false);
        let item = &w.body["responseElements"]["instancesSet"]["items"][0];
        assert_eq!(item["instanceId"], w.name());
        assert_eq!(item["previousState"], serde_json::json!({"code": 16, "name": "running"}));
        assert_eq!(item["currentState"], serde_json::json!({"code": 64, "name": "stopping"}));
        assert_eq!(w.body["requestParameters"]["force"], false);
    }
}
