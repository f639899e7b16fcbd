//! Region scope: the Region of the SigV4 credential scope limits the answer, as at AWS, unless the
//! server serves all Regions.

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use parquetrail_server::{LookupQuery, ServerConfig};

use crate::awscli::{ids as cli_ids, lookup_events};
use crate::sdk::client;
use crate::support::{MemoryBackend, SECRET_ACCESS_KEY, aws_cli, config, query, start};

async fn all_ids(client: &aws_sdk_cloudtrail::Client) -> Vec<String> {
    let events: Vec<_> =
        client.lookup_events().into_paginator().page_size(3).items().send().collect::<Result<_, _>>().await.unwrap();
    events.into_iter().map(|e| e.event_id.unwrap()).collect()
}

#[tokio::test]
async fn the_credential_scope_region_scopes_the_lookup() {
    let reference = MemoryBackend::new();
    let server = start(config()).await;
    for region in ["us-east-1", "eu-west-1", "ap-south-1"] {
        let expected = reference.ids(&LookupQuery { region: Some(region.into()), ..query() });
        assert_eq!(all_ids(&client(&server, SECRET_ACCESS_KEY, region)).await, expected, "{region}");
    }
    // A token is bound to its Region too.
    let east = client(&server, SECRET_ACCESS_KEY, "us-east-1").lookup_events().max_results(1).send().await.unwrap();
    let error = client(&server, SECRET_ACCESS_KEY, "eu-west-1")
        .lookup_events()
        .next_token(east.next_token.unwrap())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_invalid_next_token_exception(), "{error:?}");
    server.shutdown().await.unwrap();

    let server = start(ServerConfig { all_regions: true, ..config() }).await;
    let everything = reference.ids(&query());
    assert!(everything.len() > reference.ids(&LookupQuery { region: Some("us-east-1".into()), ..query() }).len());
    for region in ["us-east-1", "eu-west-1"] {
        assert_eq!(all_ids(&client(&server, SECRET_ACCESS_KEY, region)).await, everything, "all Regions via {region}");
    }
    // The AwsRegion attribute still narrows an all-Regions server.
    let attribute = LookupAttribute::builder()
        .attribute_key(LookupAttributeKey::from("AwsRegion"))
        .attribute_value("eu-west-1")
        .build()
        .unwrap();
    let page =
        client(&server, SECRET_ACCESS_KEY, "us-east-1").lookup_events().lookup_attributes(attribute).send().await;
    let expected = reference.ids(&LookupQuery { region: Some("eu-west-1".into()), ..query() });
    let got: Vec<_> = page.unwrap().events.unwrap().into_iter().map(|e| e.event_id.unwrap()).collect();
    assert_eq!(got, expected);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_region_scopes_the_lookup() {
    let Some(cli) = aws_cli("the_cli_region_scopes_the_lookup") else { return };
    let reference = MemoryBackend::new();
    let server = start(config()).await;
    let (ok, stdout, stderr) =
        lookup_events(&cli, &server, SECRET_ACCESS_KEY, "eu-west-1", &["--page-size", "2"]).await;
    assert!(ok, "{stderr}");
    assert_eq!(cli_ids(&stdout).0, reference.ids(&LookupQuery { region: Some("eu-west-1".into()), ..query() }));
    server.shutdown().await.unwrap();
}
