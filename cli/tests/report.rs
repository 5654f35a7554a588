//! The HTML report, rendered by headless Chromium (Debian's `chromium`): `pinpipe report` on
//! the fixture lake writes a page whose every chart shows the fixture's expected values, that
//! logs nothing to the browser console, and that Chromium can screenshot.

mod common;

use common::{expected, fixture_lake, pinpipe, succeeded, OutputWithin};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Headless Chromium: `PINPIPE_TEST_CHROMIUM`, or `chromium` on the PATH. Missing, the test
/// fails and says how to install it.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("PINPIPE_TEST_CHROMIUM") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "headless Chromium is needed for the report tests: `apt-get install chromium` \
             (scripts/test.sh installs it), or set PINPIPE_TEST_CHROMIUM"
        )
    })
}

/// Opens `page` in headless Chromium with `args`; returns what it printed (e.g. the DOM with
/// `--dump-dom`) and every message the page logged to the console.
fn browse(page: &Path, args: &[&str]) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output_within_limit();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chromium failed:\n{stderr}");
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        console,
    )
}

/// The part of `text` from `start` to the first `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)?;
    let len = text[from..].find(end)?;
    Some(&text[from..from + len + end.len()])
}

/// A value as the chart writes it (thousands grouped), or `null`.
fn chart_number(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "null".to_string(), lake::report::number)
}

#[test]
fn the_console_check_sees_what_a_broken_page_logs() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        r#"<!doctype html><svg width="9" height="9"><rect width="-5" height="3"/></svg>
        <script>console.error("from the page")</script>"#,
    )
    .unwrap();
    let (_, console) = browse(&page, &["--dump-dom"]);
    assert_eq!(console.len(), 2, "{console:#?}");
    assert!(console[0].contains("A negative value is not valid"));
    assert!(console[1].contains("from the page"));
}

#[tokio::test]
async fn the_report_of_the_fixture_lake_shows_every_chart_with_its_values() {
    let env = fixture_lake().await;
    let page = env.dir.path().join("report.html");
    let lake = env.dir.path().join("lake");
    let out = pinpipe()
        .args(["report", "--lake"])
        .arg(&lake)
        .arg("--out")
        .arg(&page)
        .output_within_limit();
    let stdout = succeeded(&out);
    assert_eq!(stdout.trim(), format!("report: {}", page.display()));

    let (dom, console) = browse(&page, &["--dump-dom"]);
    assert!(console.is_empty(), "the page logged: {console:#?}");

    let expected = expected();
    let queries = expected["queries"].as_object().unwrap();
    assert_eq!(queries.len(), 10);
    for (name, rows) in queries {
        let article = between(&dom, &format!("id=\"{name}\""), "</article>")
            .unwrap_or_else(|| panic!("no section for {name}"));
        let svg = between(article, "<svg", "</svg>")
            .unwrap_or_else(|| panic!("{name} has no chart:\n{article}"));
        assert!(
            svg.contains(&format!("aria-label=\"{}", &name[..2])),
            "{name}: {svg}"
        );
        // The first expected row: its label (the non-value columns) and its value.
        let row = rows[0].as_object().unwrap();
        let (value_key, value) = row.iter().next_back().unwrap();
        let label: Vec<String> = row
            .iter()
            .filter(|(k, _)| *k != value_key)
            .map(|(_, v)| match v {
                Value::String(s) => s.clone(),
                Value::Null => "null".to_string(),
                other => other.to_string(),
            })
            .collect();
        let label = label.join(" · ");
        let shown: String = label.chars().take(34).collect();
        assert!(svg.contains(&shown), "{name}: no bar labelled {shown:?}");
        assert!(
            svg.contains(&format!("\n{}\n", chart_number(value))),
            "{name}: no value {value} beside {label:?}"
        );
        // Every row is in the table under the chart.
        assert_eq!(
            article.matches("<tr>").count(),
            rows.as_array().unwrap().len() + 1,
            "{name}"
        );
        assert!(article.contains("<summary>SQL</summary>"), "{name}");
    }
    // q1 on the fixture: Albania's categories are in the chart.
    let q1 = between(&dom, "id=\"q1_popular_category_by_country\"", "</svg>").unwrap();
    assert!(q1.contains("Albania · diy-and-crafts"));
    // Health: the fixture's rows per table, and nothing quarantined.
    let health = between(&dom, "id=\"health\"", "</section>").unwrap();
    for table in ["pin", "geo", "user"] {
        let n = expected["clean"][table].as_array().unwrap().len();
        assert!(
            health.contains(&format!(
                "<span class=\"label\">{table}</span><span class=\"value\">{n}</span>"
            )),
            "{table}: {n} rows in\n{health}"
        );
    }
    assert!(health.contains("No record has been quarantined."));

    // A screenshot of the whole page: a PNG of the window's size.
    let shot = env.dir.path().join("report.png");
    browse(
        &page,
        &[
            "--window-size=1280,2400",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((size(16), size(20)), (1280, 2400));
    assert!(png.len() > 50_000, "a blank page? {} bytes", png.len());
}
