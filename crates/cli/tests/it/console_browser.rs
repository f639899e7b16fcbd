//! The web console in a real browser: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`, installed by `.ci/run`). The page is used as a person uses
//! it — a filter and a time range set in the form, "Load more", an event opened, two compared, a
//! dashboard — and what it shows is compared with the reference computed from the input JSON.
//! Records carrying `<script>` and `"><img onerror=…>` show as text and run nothing. Screenshots
//! of each page go to the test's output folder (`console-screenshots/`).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use parquetrail_testkit::{not_run, on_ci};
use serde_json::{Value, json};

use crate::console::{
    END, HOSTILE_SCRIPT_ID, IMG, SCRIPT, START, at, console_archive, expected, ids_of, insights_archive, query,
};
use crate::serve_clients::Served;

/// A program on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// chromedriver on a free loopback port; stopped with the test.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(binary: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
        // Up to 30 s for it to listen: a readiness wait, not a measured assertion.
        for _ in 0..300 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return driver;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chromedriver did not listen on port {port}");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser and chromedriver, or `None` (NOT RUN) off CI when either is missing.
fn browser_tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    let chromium = on_path("chromium").or_else(|| on_path("chromium-browser"));
    let driver = on_path("chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            let why = "chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)";
            assert!(!on_ci(), "{test}: {why}; CI is set, so a missing tool is a failure");
            not_run(test, why);
            None
        }
    }
}

async fn ready(client: &Client, view: &str) {
    let css = format!("body[data-ready=\"{view}\"]");
    client.wait().at_most(Duration::from_secs(60)).for_element(Locator::Css(&css)).await.unwrap();
}

async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

/// The event IDs of the table's rows, in order.
async fn shown_ids(client: &Client) -> Vec<String> {
    let ids =
        js(client, "return Array.from(document.querySelectorAll('#events tbody tr')).map(r => r.dataset.eventId)")
            .await;
    ids.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

async fn shot(client: &Client, dir: &Path, name: &str) {
    js(client, "window.scrollTo(0, 0); return true").await;
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Nothing of the hostile records ran or became markup.
async fn nothing_ran(client: &Client, page: &str) {
    assert_eq!(js(client, "return typeof window.__pwned").await, "undefined", "{page}: a script ran");
    assert_eq!(js(client, "return document.querySelectorAll('main img, main script').length").await, 0, "{page}");
}

/// The test output folder the screenshots go to.
fn screenshots() -> PathBuf {
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    shots
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// A headless Chromium session over `driver`.
async fn session(chromium: &Path, driver: &Driver, test: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,860", "--no-first-run", "--disable-extensions"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("{test}: cannot start a Chromium session: {e}"))
}

#[test]
fn console_in_a_real_browser() {
    let test = "console_in_a_real_browser";
    let Some((chromium, chromedriver)) = browser_tools(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let events = console_archive(dir.path());
    let served = Served::start(dir.path(), "archive", &[], Vec::new());
    let driver = Driver::start(&chromedriver);
    let shots = screenshots();
    let base = served.url.clone();
    block_on(async {
        let client = session(&chromium, &driver, test).await;

        // Event history: the default view, then a filter and a custom range set in the form.
        client.goto(&format!("{base}/")).await.unwrap();
        ready(&client, "events").await;
        let range = (at(START), at(END));
        // The most common Region of the write events in the range, with the default Read-only = false.
        let region = {
            let hits = expected(&events, &["ReadOnly=false"], range, &[], &[]);
            let count = |r: &str| hits.iter().filter(|e| e.str("/awsRegion") == Some(r)).count();
            hits.iter()
                .filter_map(|e| e.str("/awsRegion"))
                .max_by_key(|r| (count(r), r.to_string()))
                .unwrap()
                .to_string()
        };
        client.find(Locator::Css("#add-attr")).await.unwrap().click().await.unwrap();
        let keys = client.find_all(Locator::Css(".attr-key")).await.unwrap();
        keys.last().unwrap().clone().select_by_value("AwsRegion").await.unwrap();
        let values = client.find_all(Locator::Css(".attr-value")).await.unwrap();
        values.last().unwrap().send_keys(&region).await.unwrap();
        client.find(Locator::Css("#range")).await.unwrap().select_by_value("custom").await.unwrap();
        client.find(Locator::Css("#start")).await.unwrap().send_keys(START).await.unwrap();
        client.find(Locator::Css("#end")).await.unwrap().send_keys(END).await.unwrap();
        client.find(Locator::Css("#limit")).await.unwrap().select_by_value("10").await.unwrap();
        client.find(Locator::Css("#apply")).await.unwrap().click().await.unwrap();
        ready(&client, "events").await;
        let attr = format!("AwsRegion={region}");
        let want = ids_of(&expected(&events, &["ReadOnly=false", &attr], range, &[], &[]));
        assert!(want.len() > 10, "the filter keeps more than a page: {}", want.len());
        assert_eq!(shown_ids(&client).await, want[..10], "the first page");
        // The URL holds the query: opening it again shows the same rows.
        let url = client.current_url().await.unwrap().to_string();
        assert!(url.contains("attr=AwsRegion") && url.contains("range=custom"), "{url}");
        client.find(Locator::Css("#load-more")).await.unwrap().click().await.unwrap();
        let mut shown = Vec::new();
        for _ in 0..600 {
            shown = shown_ids(&client).await;
            if shown.len() > 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(shown, want[..want.len().min(20)], "after Load more");
        shot(&client, &shots, "event-history").await;

        // The CSV the download link gives is the whole result.
        let href = js(&client, "return document.getElementById('download-csv').href").await;
        let csv_text = client
            .execute_async(
                "const done = arguments[arguments.length - 1]; fetch(arguments[0]).then(r => r.text()).then(done)",
                vec![href],
            )
            .await
            .unwrap();
        let mut reader = csv::Reader::from_reader(csv_text.as_str().unwrap().as_bytes());
        let id_column = reader.headers().unwrap().iter().position(|h| h == "Event ID").unwrap();
        let csv_ids: Vec<String> = reader.records().map(|r| r.unwrap()[id_column].to_string()).collect();
        assert_eq!(csv_ids, want, "the CSV download");

        // Reopening the URL shows the same first page.
        client.goto(&url).await.unwrap();
        ready(&client, "events").await;
        assert_eq!(shown_ids(&client).await, want[..10], "the bookmarked view");

        // An event: its record is the input's.
        client.find(Locator::Css(".event-link")).await.unwrap().click().await.unwrap();
        ready(&client, "event").await;
        let record: Value =
            serde_json::from_str(&client.find(Locator::Css("#record")).await.unwrap().text().await.unwrap()).unwrap();
        let first = events.iter().find(|e| e.id == want[0]).unwrap();
        assert_eq!(record, first.record, "the event's JSON");
        let related =
            js(&client, "return Array.from(document.querySelectorAll('#related a')).map(a => a.textContent)").await;
        assert!(
            related.as_array().unwrap().iter().any(|t| t.as_str().unwrap().starts_with("Same request ID")),
            "{related}"
        );
        shot(&client, &shots, "event-detail").await;

        // Compare two events.
        client.goto(&format!("{base}/compare{}", query(&[("id", &want[0]), ("id", &want[1])]))).await.unwrap();
        ready(&client, "compare").await;
        let columns = js(&client, "return document.querySelectorAll('#compare-table thead th').length").await;
        assert_eq!(columns, 3);
        let differs = js(&client, "return Array.from(document.querySelectorAll('#compare-table tbody tr.differs th')).map(t => t.textContent)").await;
        assert!(differs.as_array().unwrap().iter().any(|t| t == "eventID"), "{differs}");
        shot(&client, &shots, "compare").await;

        // The dashboard of the range: one point per minute, the counts of the reference.
        client
            .goto(&format!("{base}/dashboard{}", query(&[("range", "custom"), ("start", START), ("end", END)])))
            .await
            .unwrap();
        ready(&client, "dashboard").await;
        let in_range = expected(&events, &[], range, &[], &[]);
        let counts = js(&client, "return Array.from(document.querySelectorAll('#events-over-time circle')).map(c => Number(c.dataset.count))").await;
        let counts: Vec<usize> = counts.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_eq!(counts.len(), 11, "ten minutes, inclusive, a minute a point");
        assert_eq!(counts.iter().sum::<usize>(), in_range.len());
        let widgets = js(&client, "return document.querySelectorAll('.widget').length").await;
        assert_eq!(widgets, 10);
        nothing_ran(&client, "dashboard").await;
        shot(&client, &shots, "dashboard").await;

        // The hostile records: shown as text, nothing runs.
        client
            .goto(&format!("{base}/events{}", query(&[("attr", "AccountId=111122223333"), ("range", "all")])))
            .await
            .unwrap();
        ready(&client, "events").await;
        let cells =
            js(&client, "return Array.from(document.querySelectorAll('#events tbody td')).map(t => t.textContent)")
                .await;
        let cells: Vec<&str> = cells.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(cells.contains(&SCRIPT), "{cells:?}");
        assert!(cells.contains(&IMG), "{cells:?}");
        nothing_ran(&client, "hostile event history").await;
        shot(&client, &shots, "hostile-event-history").await;
        client.goto(&format!("{base}/event{}", query(&[("id", HOSTILE_SCRIPT_ID)]))).await.unwrap();
        ready(&client, "event").await;
        let record: Value =
            serde_json::from_str(&client.find(Locator::Css("#record")).await.unwrap().text().await.unwrap()).unwrap();
        assert_eq!(&record, &events.iter().find(|e| e.id == HOSTILE_SCRIPT_ID).unwrap().record);
        nothing_ran(&client, "hostile event").await;

        client.close().await.unwrap();
    });
}

/// The Insights page over generated activity with injected episodes: each injected episode is
/// listed (type, source, name, start within 5 minutes: the generator's list is the reference,
/// independent of our detection), as computed, with a chart of a point a minute whose counts are
/// the input's; the delivered Insight is told apart and its hostile attributions show as text.
#[test]
fn insights_page_in_a_real_browser() {
    let test = "insights_page_in_a_real_browser";
    let Some((chromium, chromedriver)) = browser_tools(test) else { return };
    let fixture = insights_archive();
    let served = Served::start(&fixture.dir, "archive", &[], Vec::new());
    let driver = Driver::start(&chromedriver);
    let shots = screenshots();
    let base = served.url.clone();
    block_on(async {
        let client = session(&chromium, &driver, test).await;
        // The range set in the form, as a person does.
        client.goto(&format!("{base}/insights")).await.unwrap();
        ready(&client, "insights").await;
        client.find(Locator::Css("#range")).await.unwrap().select_by_value("custom").await.unwrap();
        client.find(Locator::Css("#start")).await.unwrap().send_keys("2024-03-08").await.unwrap();
        client.find(Locator::Css("#end")).await.unwrap().send_keys("2024-03-11").await.unwrap();
        client.find(Locator::Css("#apply")).await.unwrap().click().await.unwrap();
        ready(&client, "insights").await;
        let cards = js(
            &client,
            "return Array.from(document.querySelectorAll('#insights .insight')).map(c => ({
                computed: c.dataset.computed === 'true', insight_type: c.dataset.insightType,
                event_source: c.dataset.eventSource, event_name: c.dataset.eventName, start: c.dataset.start,
                error: c.dataset.errorCode === undefined ? null : c.dataset.errorCode,
                points: Array.from(c.querySelectorAll('.insight-chart circle')).map(p => [p.dataset.start, Number(p.dataset.count)]),
                baseline: c.querySelector('.insight-chart .baseline') ? Number(c.querySelector('.insight-chart .baseline').dataset.average) : null,
                baseline_label: c.querySelector('.insight-chart .baseline-label') ? c.querySelector('.insight-chart .baseline-label').textContent : null,
                facts: Array.from(c.querySelectorAll('table.facts td')).map(t => t.textContent),
                start_link: c.querySelector('a.start-event') ? c.querySelector('a.start-event').getAttribute('href') : null,
                cells: Array.from(c.querySelectorAll('.attributions td')).map(t => t.textContent) }))",
        )
        .await;
        let cards = cards.as_array().unwrap();
        // The page fits the window's width (1280 px): a wide facts table scrolls in its card.
        let widths =
            js(&client, "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]").await;
        assert!(widths[0].as_u64() <= widths[1].as_u64(), "the page scrolls sideways: {widths}");
        for e in &fixture.injected {
            let card = cards
                .iter()
                .find(|c| {
                    c["computed"] == true
                        && c["insight_type"] == e["insightType"]
                        && c["event_source"] == e["eventSource"]
                        && c["event_name"] == e["eventName"]
                        && c["error"] == e["errorCode"]
                        && (at(c["start"].as_str().unwrap()) - at(e["start"].as_str().unwrap())).num_seconds().abs()
                            <= 300
                })
                .unwrap_or_else(|| panic!("not on the page: {e}\n{cards:#?}"));
            // A point a minute from 30 minutes before the start to 30 after the end, each the
            // input's count of that minute.
            let points = card["points"].as_array().unwrap();
            let from = at(points[0][0].as_str().unwrap());
            assert_eq!(from, at(card["start"].as_str().unwrap()) - chrono::TimeDelta::minutes(30), "{e}");
            let last = at(points[points.len() - 1][0].as_str().unwrap());
            let minutes = (last - from).num_minutes() as usize + 1;
            assert_eq!(points.len(), minutes, "{e}");
            let episode = e["minutes"].as_u64().unwrap() as usize;
            assert!((minutes as i64 - 60 - episode as i64).abs() <= 5, "the episode and an hour around it: {minutes}");
            let shown: Vec<u64> = points.iter().map(|p| p[1].as_u64().unwrap()).collect();
            assert_eq!(shown, fixture.per_minute(e, from, minutes), "{e}");
            let baseline = card["baseline"].as_f64().unwrap_or_else(|| panic!("no baseline: {card}"));
            // Shown to two decimals at most; the exact average stays in the line's data.
            let shown = format!("baseline {}", (baseline * 100.0).round() / 100.0);
            assert_eq!(card["baseline_label"].as_str(), Some(shown.as_str()), "{card}");
            // So are the averages of the facts table (the API gives them to 10 decimals).
            for fact in card["facts"].as_array().unwrap() {
                let text = fact.as_str().unwrap();
                if text.parse::<f64>().is_ok() {
                    assert!(text.split('.').nth(1).is_none_or(|d| d.len() <= 2), "{text}: {card}");
                }
            }
            assert!(card["start_link"].as_str().unwrap().starts_with("/event?id="), "{card}");
            let identity = e["identity"].as_str().unwrap();
            assert!(
                card["cells"].as_array().unwrap().iter().any(|t| t == identity),
                "the injecting identity is listed"
            );
        }
        let delivered = cards.iter().find(|c| c["computed"] == false).expect("the delivered Insight");
        let cells = delivered["cells"].as_array().unwrap();
        assert!(cells.iter().any(|t| t == SCRIPT) && cells.iter().any(|t| t == IMG), "{cells:?}");
        nothing_ran(&client, "insights").await;
        shot(&client, &shots, "insights").await;

        // Its Start event opens in event detail.
        client.find(Locator::Css("#insights .insight a.start-event")).await.unwrap().click().await.unwrap();
        ready(&client, "event").await;
        let record: Value =
            serde_json::from_str(&client.find(Locator::Css("#record")).await.unwrap().text().await.unwrap()).unwrap();
        assert_eq!(record["eventType"], "AwsCloudTrailInsight");
        assert_eq!(record["insightDetails"]["state"], "Start");
        client.close().await.unwrap();
    });
}
