//! The one Arrow schema of the `events` and `insights` datasets, and the documentation of every
//! column (rendered to `docs/COLUMNS.md` by a test, so the two cannot drift apart).
//!
//! It contains every column of AWS's official Athena CloudTrail table, with the same lowercase
//! names and compatible types (strings stay strings — `readonly` included — so saved queries keep
//! working), plus what that table lacks: newer identity fields, `tlsdetails.keyexchange`,
//! `managementevent`, `insightdetails`, a real timestamp, the source object and the lossless
//! remainder. Partition columns (`account`, `region`, `date`) live in the path, not in the files.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

fn s(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn st(name: &str, fields: Vec<Field>) -> Field {
    Field::new(name, DataType::Struct(Fields::from(fields)), true)
}

fn session_issuer() -> Field {
    st("sessionissuer", vec![s("type"), s("principalid"), s("arn"), s("accountid"), s("username")])
}

fn user_identity() -> Field {
    let attributes = Field::new(
        "attributes",
        DataType::Map(
            Arc::new(Field::new(
                "entries",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", DataType::Utf8, true),
                ])),
                false,
            )),
            false,
        ),
        true,
    );
    st(
        "useridentity",
        vec![
            s("type"),
            s("principalid"),
            s("arn"),
            s("accountid"),
            s("invokedby"),
            s("accesskeyid"),
            s("username"),
            st("onbehalfof", vec![s("userid"), s("identitystorearn")]),
            st(
                "sessioncontext",
                vec![
                    st("attributes", vec![s("mfaauthenticated"), s("creationdate")]),
                    session_issuer(),
                    s("ec2roledelivery"),
                    st("webidfederationdata", vec![s("federatedprovider"), attributes]),
                    s("sourceidentity"),
                    s("assumedroot"),
                    s("signinsessionarn"),
                ],
            ),
            s("identityprovider"),
            s("credentialid"),
            st("invokedbydelegate", vec![s("accountid")]),
            st(
                "inscopeof",
                vec![
                    s("sourcearn"),
                    s("sourceaccount"),
                    s("issuertype"),
                    s("credentialsissuedto"),
                    s("credentialsissuedtoversion"),
                ],
            ),
        ],
    )
}

/// The schema of both datasets (insights rows simply leave identity columns empty).
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let resource = DataType::Struct(Fields::from(vec![s("arn"), s("accountid"), s("type"), s("arnprefix")]));
            Arc::new(Schema::new(vec![
                s("eventversion"),
                user_identity(),
                s("eventtime"),
                s("eventsource"),
                s("eventname"),
                s("awsregion"),
                s("sourceipaddress"),
                s("useragent"),
                s("errorcode"),
                s("errormessage"),
                s("requestparameters"),
                s("responseelements"),
                s("additionaleventdata"),
                s("requestid"),
                s("eventid"),
                s("readonly"),
                Field::new("resources", DataType::List(Arc::new(Field::new("item", resource, true))), true),
                s("eventtype"),
                s("apiversion"),
                s("recipientaccountid"),
                s("serviceeventdetails"),
                s("sharedeventid"),
                s("vpcendpointid"),
                s("vpcendpointaccountid"),
                s("eventcategory"),
                st("addendum", vec![s("reason"), s("updatedfields"), s("originalrequestid"), s("originaleventid")]),
                s("sessioncredentialfromconsole"),
                s("edgedevicedetails"),
                st(
                    "tlsdetails",
                    vec![s("tlsversion"), s("ciphersuite"), s("clientprovidedhostheader"), s("keyexchange")],
                ),
                Field::new("managementevent", DataType::Boolean, true),
                s("insightdetails"),
                Field::new("eventtime_ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
                Field::new("source_key", DataType::Utf8, false),
                Field::new("source_index", DataType::Int32, false),
                s("unmapped"),
            ]))
        })
        .clone()
}

/// Where a column comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A column of AWS's official Athena CloudTrail table.
    Official,
    /// Added by parquetrail.
    Added,
}

/// Documentation of one column (nested fields by dotted path).
#[derive(Debug, Clone, Copy)]
pub struct ColumnDoc {
    pub path: &'static str,
    /// The CloudTrail JSON field it holds.
    pub json: &'static str,
    pub origin: Origin,
    pub doc: &'static str,
}

macro_rules! docs {
    ($( $path:literal, $json:literal, $origin:ident, $doc:literal; )*) => {
        /// Every column and nested field, in schema order.
        pub const COLUMNS: &[ColumnDoc] = &[ $( ColumnDoc { path: $path, json: $json, origin: Origin::$origin, doc: $doc }, )* ];
    };
}

docs! {
    "eventversion", "eventVersion", Official, "Record format version, e.g. `1.08`.";
    "useridentity", "userIdentity", Official, "Who made the request. NULL for Insights events.";
    "useridentity.type", "userIdentity.type", Official, "Root, IAMUser, AssumedRole, Role, FederatedUser, Directory, AWSAccount, AWSService, IdentityCenterUser, SAMLUser, WebIdentityUser or Unknown.";
    "useridentity.principalid", "userIdentity.principalId", Official, "Unique identifier of the principal.";
    "useridentity.arn", "userIdentity.arn", Official, "ARN of the principal.";
    "useridentity.accountid", "userIdentity.accountId", Official, "Account that owns the principal.";
    "useridentity.invokedby", "userIdentity.invokedBy", Official, "The AWS service that made the request on the principal's behalf.";
    "useridentity.accesskeyid", "userIdentity.accessKeyId", Official, "Access key used to sign the request (may be empty).";
    "useridentity.username", "userIdentity.userName", Official, "Friendly name of the principal.";
    "useridentity.onbehalfof", "userIdentity.onBehalfOf", Official, "IAM Identity Center user the call was made for: `userid`, `identitystorearn`.";
    "useridentity.sessioncontext", "userIdentity.sessionContext", Official, "Temporary-credential session details.";
    "useridentity.sessioncontext.attributes", "…sessionContext.attributes", Official, "`mfaauthenticated` (\"true\"/\"false\" string) and `creationdate`.";
    "useridentity.sessioncontext.sessionissuer", "…sessionContext.sessionIssuer", Official, "Who issued the credentials: `type`, `principalid`, `arn`, `accountid`, `username`.";
    "useridentity.sessioncontext.ec2roledelivery", "…sessionContext.ec2RoleDelivery", Official, "`1.0` or `2.0` (IMDSv1/IMDSv2) for EC2 instance credentials.";
    "useridentity.sessioncontext.webidfederationdata", "…sessionContext.webIdFederationData", Official, "`federatedprovider` and `attributes` (map of strings; non-string values shown as JSON text).";
    "useridentity.sessioncontext.sourceidentity", "…sessionContext.sourceIdentity", Added, "Source identity set when the role was assumed.";
    "useridentity.sessioncontext.assumedroot", "…sessionContext.assumedRoot", Added, "`true` when a root session was assumed centrally.";
    "useridentity.sessioncontext.signinsessionarn", "…sessionContext.signInSessionArn", Added, "Console sign-in session ARN.";
    "useridentity.identityprovider", "userIdentity.identityProvider", Added, "SAML or web identity provider.";
    "useridentity.credentialid", "userIdentity.credentialId", Added, "Bearer-token credential ID.";
    "useridentity.invokedbydelegate", "userIdentity.invokedByDelegate", Added, "`accountid` of the delegate that invoked the call.";
    "useridentity.inscopeof", "userIdentity.inScopeOf", Added, "Scope of service-issued credentials: `sourcearn`, `sourceaccount`, `issuertype`, `credentialsissuedto`, `credentialsissuedtoversion`.";
    "eventtime", "eventTime", Official, "When the request completed, as CloudTrail wrote it (ISO-8601 UTC string).";
    "eventsource", "eventSource", Official, "Service the request was made to, e.g. `s3.amazonaws.com`.";
    "eventname", "eventName", Official, "The API action, e.g. `GetObject`.";
    "awsregion", "awsRegion", Official, "Region the request was made to.";
    "sourceipaddress", "sourceIPAddress", Official, "Caller IP address, a service name, or `AWS Internal`.";
    "useragent", "userAgent", Official, "Client user agent (truncated by CloudTrail at 1 KB).";
    "errorcode", "errorCode", Official, "Error code when the request failed.";
    "errormessage", "errorMessage", Official, "Error message when the request failed.";
    "requestparameters", "requestParameters", Official, "Request parameters as JSON text; NULL when CloudTrail wrote `null` (see `unmapped.absent` for omitted bodies).";
    "responseelements", "responseElements", Official, "Response elements as JSON text; NULL when CloudTrail wrote `null`.";
    "additionaleventdata", "additionalEventData", Official, "Additional data as JSON text (e.g. `MFAUsed` on ConsoleLogin).";
    "requestid", "requestID", Official, "Service-assigned request ID.";
    "eventid", "eventID", Official, "CloudTrail-assigned event GUID (duplicates are possible).";
    "readonly", "readOnly", Official, "`true`/`false` as a string, like the official table.";
    "resources", "resources", Official, "Resources accessed: list of `arn`, `accountid`, `type`, plus `arnprefix`.";
    "eventtype", "eventType", Official, "AwsApiCall, AwsServiceEvent, AwsConsoleAction, AwsConsoleSignIn, AwsVpceEvent, AwsCloudTrailInsight.";
    "apiversion", "apiVersion", Official, "API version of AwsApiCall events.";
    "recipientaccountid", "recipientAccountId", Official, "Account that received the event (the `account` partition).";
    "serviceeventdetails", "serviceEventDetails", Official, "Service event details as JSON text.";
    "sharedeventid", "sharedEventID", Official, "GUID shared by copies of one action delivered to several accounts.";
    "vpcendpointid", "vpcEndpointId", Official, "VPC endpoint the request came through.";
    "vpcendpointaccountid", "vpcEndpointAccountId", Official, "Account that owns the VPC endpoint.";
    "eventcategory", "eventCategory", Official, "Management, Data, NetworkActivity or Insight.";
    "addendum", "addendum", Official, "Why a late or updated event was delivered: `reason`, `updatedfields`, `originalrequestid`, `originaleventid`.";
    "sessioncredentialfromconsole", "sessionCredentialFromConsole", Official, "`true` when the session came from the console.";
    "edgedevicedetails", "edgeDeviceDetails", Official, "Edge device details as JSON text.";
    "tlsdetails", "tlsDetails", Official, "`tlsversion`, `ciphersuite`, `clientprovidedhostheader`, and (added) `keyexchange`.";
    "managementevent", "managementEvent", Added, "Whether the event is a management event (boolean).";
    "insightdetails", "insightDetails", Added, "Insights events: state, type, statistics, as JSON text.";
    "eventtime_ts", "eventTime", Added, "`eventTime` as a UTC timestamp (microseconds), for range filters and sorting.";
    "source_key", "—", Added, "Key of the CloudTrail object the record came from.";
    "source_index", "—", Added, "Position of the record in that object's `Records` array.";
    "unmapped", "—", Added, "Lossless remainder as JSON: `{\"fields\":{<JSON Pointer>:<value>},\"absent\":[<JSON Pointer>]}` for unknown fields (at any depth), values of unexpected types and explicit nulls; `\"overwritten\":[[<JSON Pointer>,<value>]]` keeps the earlier values of a key repeated in one object (the column holds the last). NULL when the typed columns hold the whole record.";
}

/// `docs/COLUMNS.md`, rendered from [`schema`] and [`COLUMNS`], then the `digests` dataset's
/// section ([`crate::digest_table::columns_markdown`]).
pub fn columns_markdown() -> String {
    let mut out = String::from(
        "# Columns of the `events` and `insights` datasets\n\n\
         Generated from `crates/core/src/schema.rs` by its tests; do not edit by hand.\n\n\
         Partition columns are in the path, not in the files: `account` (from `recipientAccountId`, else \
         `userIdentity.accountId`, else the key), `region` (from `awsRegion`, else the key) and `date` \
         (`YYYY-MM-DD` of the record's own `eventTime`, UTC).\n\n\
         | column | type | CloudTrail field | origin | meaning |\n|---|---|---|---|---|\n",
    );
    let schema = schema();
    for col in COLUMNS {
        let ty = hive_type_of_path(&schema, col.path).unwrap_or_else(|| "?".into());
        let origin = match col.origin {
            Origin::Official => "official table",
            Origin::Added => "added",
        };
        out.push_str(&format!("| `{}` | `{}` | `{}` | {} | {} |\n", col.path, ty, col.json, origin, col.doc));
    }
    out.push_str(&crate::digest_table::columns_markdown());
    out
}

/// The Hive/Athena type of an Arrow type, as a `CREATE TABLE` would spell it.
pub fn hive_type(dt: &DataType) -> String {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 => "string".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Timestamp(..) => "timestamp".into(),
        DataType::List(f) => format!("array<{}>", hive_type(f.data_type())),
        DataType::Struct(fields) => {
            let inner: Vec<String> =
                fields.iter().map(|f| format!("{}:{}", f.name(), hive_type(f.data_type()))).collect();
            format!("struct<{}>", inner.join(","))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!("map<{},{}>", hive_type(kv[0].data_type()), hive_type(kv[1].data_type()))
            }
            other => format!("map<{other}>"),
        },
        other => format!("{other}"),
    }
}

pub(crate) fn hive_type_of_path(schema: &Schema, path: &str) -> Option<String> {
    let mut parts = path.split('.');
    let mut field = schema.field_with_name(parts.next()?).ok()?.clone();
    for part in parts {
        let DataType::Struct(children) = field.data_type() else { return None };
        field = children.iter().find(|f| f.name() == part)?.as_ref().clone();
    }
    let ty = hive_type(field.data_type());
    // Keep the table readable: nested structs are documented field by field.
    Some(if ty.len() > 60 { ty.split('<').next().unwrap_or(&ty).to_string() } else { ty })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every official Athena column, with its official type (ours may add struct fields).
    const OFFICIAL: &[(&str, &str)] = &[
        ("eventversion", "string"),
        ("eventtime", "string"),
        ("eventsource", "string"),
        ("eventname", "string"),
        ("awsregion", "string"),
        ("sourceipaddress", "string"),
        ("useragent", "string"),
        ("errorcode", "string"),
        ("errormessage", "string"),
        ("requestparameters", "string"),
        ("responseelements", "string"),
        ("additionaleventdata", "string"),
        ("requestid", "string"),
        ("eventid", "string"),
        ("readonly", "string"),
        ("resources", "array<struct<arn:string,accountid:string,type:string"),
        ("eventtype", "string"),
        ("apiversion", "string"),
        ("recipientaccountid", "string"),
        ("serviceeventdetails", "string"),
        ("sharedeventid", "string"),
        ("vpcendpointid", "string"),
        ("vpcendpointaccountid", "string"),
        ("eventcategory", "string"),
        ("addendum", "struct<reason:string,updatedfields:string,originalrequestid:string,originaleventid:string>"),
        ("sessioncredentialfromconsole", "string"),
        ("edgedevicedetails", "string"),
        ("tlsdetails", "struct<tlsversion:string,ciphersuite:string,clientprovidedhostheader:string"),
        (
            "useridentity",
            "struct<type:string,principalid:string,arn:string,accountid:string,invokedby:string,accesskeyid:string,username:string,onbehalfof:struct<userid:string,identitystorearn:string>,sessioncontext:struct<attributes:struct<mfaauthenticated:string,creationdate:string>,sessionissuer:struct<type:string,principalid:string,arn:string,accountid:string,username:string>,ec2roledelivery:string,webidfederationdata:struct<federatedprovider:string,attributes:map<string,string>>",
        ),
    ];

    #[test]
    fn contains_every_official_athena_column_with_compatible_type() {
        let schema = schema();
        for (name, official) in OFFICIAL {
            let field = schema.field_with_name(name).unwrap_or_else(|_| panic!("missing official column {name}"));
            let ours = hive_type(field.data_type());
            assert!(ours.starts_with(official), "{name}: ours {ours}, official {official}");
        }
    }

    #[test]
    fn every_column_and_nested_field_is_documented_and_docs_are_current() {
        fn walk(prefix: &str, fields: &Fields, out: &mut Vec<String>) {
            for f in fields {
                let path = if prefix.is_empty() { f.name().clone() } else { format!("{prefix}.{}", f.name()) };
                out.push(path.clone());
                // Document structs one level below useridentity.sessioncontext as wholes.
                if let DataType::Struct(children) = f.data_type()
                    && (path == "useridentity" || path == "useridentity.sessioncontext")
                {
                    walk(&path, children, out);
                }
            }
        }
        let mut paths = Vec::new();
        walk("", schema().fields(), &mut paths);
        let documented: Vec<&str> = COLUMNS.iter().map(|c| c.path).collect();
        assert_eq!(documented, paths, "schema and COLUMNS must list the same columns in the same order");

        let md = columns_markdown();
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/COLUMNS.md");
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&file, &md).unwrap();
        }
        let current = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(current == md, "docs/COLUMNS.md is stale: run `UPDATE_DOCS=1 cargo test -p parquetrail-core schema`");
    }
}
