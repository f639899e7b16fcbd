//! The Rust `aws-sdk-cloudtrail` client, unchanged but for its endpoint.

use aws_sdk_cloudtrail::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudtrail::error::ProvideErrorMetadata;
use aws_sdk_cloudtrail::primitives::DateTime;
use aws_sdk_cloudtrail::types::{EventCategory as SdkCategory, LookupAttribute, LookupAttributeKey};
use parquetrail_server::{AttributeKey, EventCategory, LookupQuery, Server};

use crate::support::{ACCESS_KEY_ID, MemoryBackend, SECRET_ACCESS_KEY, config, query, query_with, start};

/// A client of `server` signing with `secret` in `region`.
pub fn client(server: &Server, secret: &str, region: &str) -> aws_sdk_cloudtrail::Client {
    let config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(server.url())
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(ACCESS_KEY_ID, secret, None, None, "test"))
        .build();
    aws_sdk_cloudtrail::Client::from_conf(config)
}

fn attribute(key: &str, value: &str) -> LookupAttribute {
    LookupAttribute::builder().attribute_key(LookupAttributeKey::from(key)).attribute_value(value).build().unwrap()
}

/// Every event of a paginated lookup, with page size 2 so that most answers span several NextTokens.
async fn ids(
    request: aws_sdk_cloudtrail::operation::lookup_events::builders::LookupEventsFluentBuilder,
) -> Vec<String> {
    let events: Vec<_> = request.into_paginator().page_size(2).items().send().collect::<Result<_, _>>().await.unwrap();
    events.into_iter().map(|e| e.event_id.unwrap()).collect()
}

#[tokio::test]
async fn every_attribute_key_pages_to_the_reference_answer() {
    let server = start(config()).await;
    let client = client(&server, SECRET_ACCESS_KEY, "us-east-1");
    let reference = MemoryBackend::new();
    let cases = [
        (AttributeKey::EventId, "00000000-0000-4000-8000-000000000003"),
        (AttributeKey::EventName, "RunInstances"),
        (AttributeKey::ReadOnly, "false"),
        (AttributeKey::Username, "deploy-bot"),
        (AttributeKey::ResourceType, "AWS::IAM::User"),
        (AttributeKey::ResourceName, "i-0abc"),
        (AttributeKey::EventSource, "ec2.amazonaws.com"),
        (AttributeKey::AccessKeyId, "AKIAALICE"),
        (AttributeKey::AccountId, "444455556666"),
        (AttributeKey::AwsRegion, "us-east-1"),
        (AttributeKey::SourceIpAddress, "198.51.100.1"),
        (AttributeKey::ErrorCode, "AccessDenied"),
    ];
    for (key, value) in cases {
        let expected = reference.ids(&query_with(key, value, Some("us-east-1")));
        assert!(!expected.is_empty(), "{key}={value} should match something");
        let got = ids(client.lookup_events().lookup_attributes(attribute(key.as_str(), value))).await;
        assert_eq!(got, expected, "{key}={value}");
    }
    // No attribute: all of the Region's events, over many pages.
    let expected = reference.ids(&LookupQuery { region: Some("us-east-1".into()), ..query() });
    assert!(expected.len() > 10);
    assert_eq!(ids(client.lookup_events()).await, expected);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn events_carry_every_field_and_time_bounds_are_inclusive() {
    let server = start(config()).await;
    let client = client(&server, SECRET_ACCESS_KEY, "us-east-1");
    let reference = MemoryBackend::new();
    let all = reference.matching(&LookupQuery { region: Some("us-east-1".into()), ..query() });
    // Bounds set exactly on two events' times keep both.
    let (newest, oldest) = (&all[2], &all[6]);
    let request = client
        .lookup_events()
        .start_time(DateTime::from_secs(oldest.event_time.timestamp()))
        .end_time(DateTime::from_secs(newest.event_time.timestamp()));
    let got = ids(request).await;
    let expected: Vec<_> = all[2..=6].iter().map(|e| e.event_id.clone().unwrap()).collect();
    assert_eq!(got, expected);
    // Fractions: half a second after the oldest leaves it out.
    let request = client
        .lookup_events()
        .start_time(DateTime::from_secs_f64(oldest.event_time.timestamp() as f64 + 0.5))
        .end_time(DateTime::from_secs(newest.event_time.timestamp()));
    assert_eq!(ids(request).await, expected[..expected.len() - 1]);

    let page = client.lookup_events().max_results(50).send().await.unwrap();
    assert!(page.next_token.is_none());
    let events = page.events.unwrap();
    assert_eq!(events.len(), all.len());
    for (got, want) in events.iter().zip(&all) {
        assert_eq!(got.event_id, want.event_id);
        assert_eq!(got.event_name, want.event_name);
        assert_eq!(got.read_only, want.read_only);
        assert_eq!(got.access_key_id, want.access_key_id);
        assert_eq!(got.event_time.unwrap().secs(), want.event_time.timestamp());
        assert_eq!(got.event_source, want.event_source);
        assert_eq!(got.username, want.username);
        let resources: Vec<_> =
            got.resources().iter().map(|r| (r.resource_type.clone(), r.resource_name.clone())).collect();
        let wanted: Vec<_> =
            want.resources.iter().map(|r| (r.resource_type.clone(), r.resource_name.clone())).collect();
        assert_eq!(resources, wanted);
        assert_eq!(got.cloud_trail_event.as_deref(), Some(want.cloud_trail_event.as_str()));
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn several_attributes_and_insights() {
    let server = start(config()).await;
    let client = client(&server, SECRET_ACCESS_KEY, "us-east-1");
    let reference = MemoryBackend::new();

    let mut both = query_with(AttributeKey::EventSource, "ec2.amazonaws.com", Some("us-east-1"));
    both.attributes.push(parquetrail_server::LookupAttribute { key: AttributeKey::ReadOnly, value: "true".into() });
    let expected = reference.ids(&both);
    assert!(!expected.is_empty());
    let request = client
        .lookup_events()
        .lookup_attributes(attribute("EventSource", "ec2.amazonaws.com"))
        .lookup_attributes(attribute("ReadOnly", "true"));
    assert_eq!(ids(request).await, expected);

    let insights = LookupQuery { category: EventCategory::Insights, region: Some("us-east-1".into()), ..query() };
    let expected = reference.ids(&insights);
    assert_eq!(expected.len(), 2);
    assert_eq!(ids(client.lookup_events().event_category(SdkCategory::Insight)).await, expected);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn each_error_class_reaches_the_sdk_as_its_exception() {
    let server = start(config()).await;
    let client = client(&server, SECRET_ACCESS_KEY, "us-east-1");
    let (day, next_day) = (DateTime::from_secs(1_709_251_200), DateTime::from_secs(1_709_337_600));

    let error =
        client.lookup_events().start_time(next_day).end_time(day).send().await.unwrap_err().into_service_error();
    assert!(error.is_invalid_time_range_exception(), "{error:?}");
    let error = client.lookup_events().max_results(51).send().await.unwrap_err().into_service_error();
    assert!(error.is_invalid_max_results_exception(), "{error:?}");
    let error = client
        .lookup_events()
        .lookup_attributes(attribute("Bogus", "x"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_invalid_lookup_attributes_exception(), "{error:?}");
    let error = client
        .lookup_events()
        .lookup_attributes(attribute("EventName", "RunInstances"))
        .lookup_attributes(attribute("Username", "alice"))
        .event_category(SdkCategory::Insight)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_invalid_lookup_attributes_exception(), "insight with Username: {error:?}");
    let error = client
        .lookup_events()
        .event_category(SdkCategory::from("management"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_invalid_event_category_exception(), "{error:?}");

    // A real token, replayed with other parameters, and altered.
    let page = client.lookup_events().max_results(2).send().await.unwrap();
    let token = page.next_token.expect("more than two events");
    let error = client
        .lookup_events()
        .lookup_attributes(attribute("EventName", "RunInstances"))
        .next_token(&token)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_invalid_next_token_exception(), "other parameters: {error:?}");
    let altered = format!("{}{}", &token[..token.len() - 1], if token.ends_with('A') { 'B' } else { 'A' });
    let error = client.lookup_events().next_token(altered).send().await.unwrap_err().into_service_error();
    assert!(error.is_invalid_next_token_exception(), "altered: {error:?}");
    assert!(error.message().is_some_and(|m| !m.is_empty()));
    // The same token with another page size is fine.
    let next = client.lookup_events().max_results(5).next_token(&token).send().await.unwrap();
    assert_eq!(next.events.unwrap().len(), 5);
    server.shutdown().await.unwrap();
}
