//! The real AWS CLI, `aws cloudtrail lookup-events --endpoint-url …`, unchanged.

use parquetrail_server::{AttributeKey, LookupQuery, Server};
use serde_json::Value;

use crate::support::{
    MemoryBackend, SECRET_ACCESS_KEY, aws_cli, client_command, config, query, query_with, run, start,
};

/// Runs `aws cloudtrail lookup-events` against `server` with `args`; (success, stdout, stderr).
pub async fn lookup_events(
    cli: &std::path::Path,
    server: &Server,
    secret: &str,
    region: &str,
    args: &[&str],
) -> (bool, String, String) {
    let home = tempfile::tempdir().unwrap();
    let mut command = client_command(cli, secret, region, home.path());
    command.args([
        "cloudtrail",
        "lookup-events",
        "--endpoint-url",
        server.url(),
        "--region",
        region,
        "--output",
        "json",
    ]);
    command.args(args);
    run(command).await
}

/// The event IDs of the CLI's JSON output, and its own NextToken if it stopped early.
pub fn ids(stdout: &str) -> (Vec<String>, Option<String>) {
    let output: Value =
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("CLI output is not JSON ({e}): {stdout}"));
    let ids = output["Events"].as_array().unwrap().iter().map(|e| e["EventId"].as_str().unwrap().to_string()).collect();
    (ids, output["NextToken"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_paginates_to_the_reference_answer() {
    let Some(cli) = aws_cli("the_cli_paginates_to_the_reference_answer") else { return };
    let server = start(config()).await;
    let reference = MemoryBackend::new();

    // The CLI follows NextToken itself and prints one merged list.
    let (ok, stdout, stderr) =
        lookup_events(&cli, &server, SECRET_ACCESS_KEY, "us-east-1", &["--page-size", "2"]).await;
    assert!(ok, "{stderr}");
    let expected = reference.ids(&LookupQuery { region: Some("us-east-1".into()), ..query() });
    assert_eq!(ids(&stdout), (expected.clone(), None));

    let args = ["--page-size", "1", "--lookup-attributes", "AttributeKey=EventSource,AttributeValue=ec2.amazonaws.com"];
    let (ok, stdout, stderr) = lookup_events(&cli, &server, SECRET_ACCESS_KEY, "us-east-1", &args).await;
    assert!(ok, "{stderr}");
    let ec2 = reference.ids(&query_with(AttributeKey::EventSource, "ec2.amazonaws.com", Some("us-east-1")));
    assert_eq!(ids(&stdout).0, ec2);

    // --max-items stops early and resumes from the CLI's token (which wraps ours).
    let (ok, stdout, stderr) =
        lookup_events(&cli, &server, SECRET_ACCESS_KEY, "us-east-1", &["--page-size", "3", "--max-items", "4"]).await;
    assert!(ok, "{stderr}");
    let (first, token) = ids(&stdout);
    assert_eq!(first, expected[..4]);
    let token = token.expect("the CLI prints a NextToken when it stops early");
    let args = ["--page-size", "3", "--starting-token", token.as_str()];
    let (ok, stdout, stderr) = lookup_events(&cli, &server, SECRET_ACCESS_KEY, "us-east-1", &args).await;
    assert!(ok, "{stderr}");
    assert_eq!(ids(&stdout).0, expected[4..]);

    // Time bounds as the CLI writes them (ISO 8601 in, epoch seconds on the wire).
    let args = ["--start-time", "2024-03-01T10:00:00Z", "--end-time", "2024-03-02T00:00:00Z"];
    let (ok, stdout, stderr) = lookup_events(&cli, &server, SECRET_ACCESS_KEY, "us-east-1", &args).await;
    assert!(ok, "{stderr}");
    let bounded = LookupQuery {
        start: chrono::DateTime::from_timestamp(1_709_287_200, 0),
        end: chrono::DateTime::from_timestamp(1_709_337_600, 0),
        region: Some("us-east-1".into()),
        ..query()
    };
    assert_eq!(ids(&stdout).0, reference.ids(&bounded));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_class_reaches_the_cli_by_name() {
    let Some(cli) = aws_cli("each_error_class_reaches_the_cli_by_name") else { return };
    let server = start(config()).await;
    let cases: [(&[&str], &str); 5] = [
        (&["--start-time", "2024-03-02T00:00:00Z", "--end-time", "2024-03-01T00:00:00Z"], "InvalidTimeRangeException"),
        (&["--page-size", "51"], "InvalidMaxResultsException"),
        (&["--lookup-attributes", "AttributeKey=Bogus,AttributeValue=x"], "InvalidLookupAttributesException"),
        (&["--event-category", "management"], "InvalidEventCategoryException"),
        (&["--starting-token", "not-a-token"], "InvalidNextTokenException"),
    ];
    for (args, exception) in cases {
        let (ok, stdout, stderr) = lookup_events(&cli, &server, SECRET_ACCESS_KEY, "us-east-1", args).await;
        assert!(!ok, "{args:?} should fail: {stdout}");
        assert!(stderr.contains(&format!("({exception})")), "{args:?}: expected {exception} in: {stderr}");
    }
    server.shutdown().await.unwrap();
}
