//! DynamoDB item-level data events.

use crate::json::{Json, push_u64};

use super::{Call, Extra, Target, resource};

/// An item-level call (`GetItem`, `Query`, `BatchWriteItem`, …).
pub(super) fn write_item(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let t = c.target;
    j.object("requestParameters", |j| match c.ev.name {
        "BatchGetItem" | "BatchWriteItem" => {
            j.object("requestItems", |j| {
                j.key(&t.name);
                j.element(|j| {
                    j.array("keys", |j| {
                        for _ in 0..rng.usize(1..6) {
                            j.element(|j| key(j, rng, t));
                        }
                    });
                });
            });
        }
        "Query" => {
            j.kv_raw("tableName", &t.name);
            if rng.bool() {
                j.kv("indexName", "gsi1");
            }
            j.kv("keyConditionExpression", "#pk = :pk AND begins_with(#sk, :sk)");
            j.object("expressionAttributeNames", |j| {
                j.kv("#pk", "pk");
                j.kv("#sk", "sk");
            });
            j.kv_u64("limit", [25u64, 50, 100, 1000][rng.usize(0..4)]);
            j.kv_bool("scanIndexForward", false);
        }
        "Scan" => {
            j.kv_raw("tableName", &t.name);
            j.kv_u64("limit", 1000);
            j.kv("filterExpression", "attribute_exists(expiresAt) AND expiresAt < :now");
        }
        name => {
            j.kv_raw("tableName", &t.name);
            key(j, rng, t);
            match name {
                "PutItem" => j.kv("conditionExpression", "attribute_not_exists(pk)"),
                "UpdateItem" => {
                    j.kv("updateExpression", "SET #s = :s, updatedAt = :u ADD version :one");
                    j.kv("returnValues", "ALL_NEW");
                }
                "GetItem" => j.kv_bool("consistentRead", rng.bool()),
                _ => {}
            }
        }
    });
    j.kv_null("responseElements");
    resource(x, Some(c.ctx.account), "AWS::DynamoDB::Table", &t.arn);
}

/// `"key":{…}`: a partition key of the table's kind, and a sort key on half of the tables.
fn key(j: &mut Json, rng: &mut fastrand::Rng, t: &Target) {
    j.object("key", |j| {
        j.kv_with("pk", |b| {
            b.push_str(["ORDER#", "USER#", "SESSION#", "TENANT#"][t.k % 4]);
            push_u64(b, rng.u64(1000..99_999));
        });
        if t.k.is_multiple_of(2) {
            j.kv("sk", ["META", "ITEM#0001", "STATUS", "PROFILE"][rng.usize(0..4)]);
        }
    });
}

#[cfg(test)]
mod tests {
    use crate::body::testing::{ACCOUNT, REGION, call};

    #[test]
    fn item_calls_name_the_table_and_list_it() {
        for name in ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"] {
            let w = call("dynamodb", name, 3, false);
            assert_eq!(w.body["requestParameters"]["tableName"], w.name(), "{name}");
            assert!(w.body["responseElements"].is_null(), "{name}");
            let t = w.resource("AWS::DynamoDB::Table").expect("table resource");
            assert_eq!(t["ARN"], format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{}", w.name()));
        }
        let get = call("dynamodb", "GetItem", 3, false);
        assert!(get.body["requestParameters"]["key"]["pk"].as_str().unwrap().contains('#'));
    }

    #[test]
    fn batch_calls_key_their_items_by_table() {
        let w = call("dynamodb", "BatchWriteItem", 2, false);
        let items = &w.body["requestParameters"]["requestItems"];
        let keys = items[w.name()]["keys"].as_array().expect("keys of the table");
        assert!((1..6).contains(&keys.len()), "{keys:?}");
        assert!(keys.iter().all(|k| k["key"]["pk"].is_string()), "{keys:?}");
    }
}
