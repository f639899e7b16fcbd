#!/usr/bin/env python3
"""DuckDB as a peer for the whole-process benchmark: one SQL statement over the delivery tree.

Usage: peer_duckdb.py SRC_DIR OUT_DIR [THREADS]   (THREADS defaults to 1)

`read_json` over every `*.json.gz` under SRC_DIR with an explicit `Records` type (no sampling),
`unnest(Records)`, then `COPY … TO OUT_DIR (FORMAT parquet, COMPRESSION zstd, PARTITION_BY
(account, region, date))`. The columns are the official Athena table's, lowercase: flat strings,
`useridentity` / `resources` / `tlsdetails` / `addendum` as typed structs (as parquetrail writes
them), free-form bodies as JSON text, plus `eventtime_ts`, `source_key` (the file name) and
`source_index`. Unknown fields are dropped rather than kept (`unmapped`), which makes DuckDB's job
slightly easier than parquetrail's.
"""

import os
import sys

import duckdb

V = "VARCHAR"


def struct(**fields):
    return "STRUCT(" + ", ".join(f'"{k}" {t}' for k, t in fields.items()) + ")"


SESSION_ISSUER = struct(type=V, principalId=V, arn=V, accountId=V, userName=V)
USER_IDENTITY = struct(
    type=V, principalId=V, arn=V, accountId=V, invokedBy=V, accessKeyId=V, userName=V,
    onBehalfOf=struct(userId=V, identityStoreArn=V),
    sessionContext=struct(
        attributes=struct(mfaAuthenticated=V, creationDate=V),
        sessionIssuer=SESSION_ISSUER,
        ec2RoleDelivery=V,
        webIdFederationData=struct(federatedProvider=V, attributes="MAP(VARCHAR, VARCHAR)"),
        sourceIdentity=V, assumedRoot=V, signinSessionArn=V),
    identityProvider=V, credentialId=V,
    invokedByDelegate=struct(accountId=V),
    inScopeOf=struct(sourceArn=V, sourceAccount=V, issuerType=V, credentialsIssuedTo=V,
                     credentialsIssuedToVersion=V),
)
RECORD = struct(
    eventVersion=V, userIdentity=USER_IDENTITY, eventTime=V, eventSource=V, eventName=V, awsRegion=V,
    sourceIPAddress=V, userAgent=V, errorCode=V, errorMessage=V,
    requestParameters="JSON", responseElements="JSON", additionalEventData="JSON",
    requestID=V, eventID=V, readOnly=V,
    resources=struct(ARN=V, accountId=V, type=V, ARNPrefix=V) + "[]",
    eventType=V, apiVersion=V, recipientAccountId=V, serviceEventDetails="JSON", sharedEventID=V,
    vpcEndpointId=V, vpcEndpointAccountId=V, eventCategory=V,
    addendum=struct(reason=V, updatedFields=V, originalRequestID=V, originalEventID=V),
    sessionCredentialFromConsole=V, edgeDeviceDetails="JSON",
    tlsDetails=struct(tlsVersion=V, cipherSuite=V, clientProvidedHostHeader=V, keyExchange=V),
    managementEvent="BOOLEAN", insightDetails="JSON",
)

COLUMNS = [
    ("eventversion", "eventVersion"), ("useridentity", "userIdentity"), ("eventtime", "eventTime"),
    ("eventsource", "eventSource"), ("eventname", "eventName"), ("awsregion", "awsRegion"),
    ("sourceipaddress", "sourceIPAddress"), ("useragent", "userAgent"), ("errorcode", "errorCode"),
    ("errormessage", "errorMessage"), ("requestparameters", "requestParameters"),
    ("responseelements", "responseElements"), ("additionaleventdata", "additionalEventData"),
    ("requestid", "requestID"), ("eventid", "eventID"), ("readonly", "readOnly"), ("resources", "resources"),
    ("eventtype", "eventType"), ("apiversion", "apiVersion"), ("recipientaccountid", "recipientAccountId"),
    ("serviceeventdetails", "serviceEventDetails"), ("sharedeventid", "sharedEventID"),
    ("vpcendpointid", "vpcEndpointId"), ("vpcendpointaccountid", "vpcEndpointAccountId"),
    ("eventcategory", "eventCategory"), ("addendum", "addendum"),
    ("sessioncredentialfromconsole", "sessionCredentialFromConsole"),
    ("edgedevicedetails", "edgeDeviceDetails"), ("tlsdetails", "tlsDetails"),
    ("managementevent", "managementEvent"), ("insightdetails", "insightDetails"),
]


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[3]) if len(sys.argv) == 4 else 1
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = false")
    pattern = os.path.join(src, "**", "*.json.gz").replace("'", "''")
    select = ",\n  ".join(f'r."{field}" AS {name}' for name, field in COLUMNS)
    sql = f"""
COPY (
  SELECT
  {select},
  CAST(r."eventTime" AS TIMESTAMPTZ) AS eventtime_ts,
  source_key,
  CAST(source_index - 1 AS INTEGER) AS source_index,
  coalesce(r."recipientAccountId", r."userIdentity"."accountId") AS account,
  r."awsRegion" AS region,
  substr(r."eventTime", 1, 10) AS date
  FROM (
    SELECT filename AS source_key, unnest(Records) AS r, generate_subscripts(Records, 1) AS source_index
    FROM read_json('{pattern}', format = 'unstructured', filename = true,
                   maximum_object_size = 1073741824,
                   columns = {{'Records': '{RECORD}[]'}})
  )
) TO '{out.replace("'", "''")}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 3,
       PARTITION_BY (account, region, date), OVERWRITE_OR_IGNORE)
"""
    con.execute(sql)
    rows = con.execute(
        f"SELECT count(*) FROM read_parquet('{os.path.join(out, '**', '*.parquet')}', hive_partitioning = false)"
    ).fetchone()[0]
    print(f"duckdb peer: {rows} rows")


if __name__ == "__main__":
    main()
