//! The report page: one self-contained HTML file (inline CSS and SVG, no scripts, nothing
//! fetched at view time), built with maud so every value is escaped.

use super::chart::{bar_chart, number, Bar, ChartError};
use super::{Health, ResultTable};
use maud::{html, Markup, PreEscaped, DOCTYPE};

const CSS: &str = include_str!("report.css");

/// `s` escaped for HTML text or a quoted attribute.
pub fn escape(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    // Writing into a String cannot fail.
    let _ = maud::Escaper::new(&mut out).write_str(s);
    out
}

/// The whole page.
pub fn page(
    lake: &str,
    generated_at: &str,
    health: &Health,
    results: &[ResultTable],
) -> Result<String, ChartError> {
    let health_section = health_section(health)?;
    let mut result_sections = Vec::with_capacity(results.len());
    for result in results {
        result_sections.push(result_section(result)?);
    }
    Ok(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { "pinpipe report" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { "pinpipe report" }
                    p.meta { "Lake " code { (lake) } " · generated " (generated_at) " (UTC)" }
                    nav {
                        a href="#health" { "Pipeline health" }
                        @for r in results {
                            " · " a href={ "#" (r.name) } { (r.short_name()) }
                        }
                    }
                }
                main {
                    (health_section)
                    section #results {
                        h2 { "Query results" }
                        p.note { "Per-year results count in UTC: timestamps in the lake are UTC instants." }
                        @for s in result_sections { (s) }
                    }
                }
            }
        }
    }
    .into_string())
}

fn chart(title: &str, bars: &[Bar]) -> Result<Markup, ChartError> {
    Ok(match bar_chart(title, bars)? {
        Some(svg) => html! {
            figure.chart { (PreEscaped(svg)) }
            @if bars.len() > super::chart::MAX_BARS {
                p.note { "The first " (super::chart::MAX_BARS) " of " (bars.len()) " rows are drawn; the table has them all." }
            }
        },
        None => html! { p.empty { "Nothing to draw yet." } },
    })
}

fn result_section(r: &ResultTable) -> Result<Markup, ChartError> {
    let chart = chart(&r.title, &r.bars())?;
    Ok(html! {
        article.result id=(r.name) {
            h3 { (r.title) }
            p.meta { code { (r.name) } " · " (r.rows.len()) " rows" }
            (chart)
            @if r.rows.is_empty() {
                p.empty { "No rows." }
            } @else {
                div.scroll {
                    table {
                        thead { tr { @for c in &r.columns { th { (c) } } } }
                        tbody {
                            @for row in &r.rows {
                                tr { @for cell in row { td.(cell.class()) { (cell.text()) } } }
                            }
                        }
                    }
                }
            }
            details {
                summary { "SQL" }
                pre { code { (r.sql) } }
            }
        }
    })
}

fn health_section(h: &Health) -> Result<Markup, ChartError> {
    let per_day_bars: Vec<Bar> = h
        .per_day
        .iter()
        .map(|d| Bar {
            label: d.day.clone(),
            value: Some(d.data_rows() as f64),
        })
        .collect();
    let quarantine_bars: Vec<Bar> = h
        .quarantine
        .iter()
        .map(|q| Bar {
            label: q.code.to_string(),
            value: Some(q.count as f64),
        })
        .collect();
    let per_day_chart = chart("Rows landed per day", &per_day_bars)?;
    let quarantine_chart = chart("Quarantined records by error code", &quarantine_bars)?;
    let run_chart = match &h.last_run {
        Some(run) => chart(
            "Last daily run: seconds per query",
            &run.queries
                .iter()
                .map(|q| Bar {
                    label: q.name.clone(),
                    value: Some(q.elapsed_ms as f64 / 1000.0),
                })
                .collect::<Vec<_>>(),
        )?,
        None => html! {},
    };
    Ok(html! {
        section #health {
            h2 { "Pipeline health" }
            div.cards {
                @for t in &h.tables {
                    div.card {
                        span.label { (t.table) }
                        span.value { (number(t.rows as f64)) }
                        span.sub { "rows" }
                    }
                }
                div.card {
                    span.label { "duplicates removed" }
                    span.value { (number(h.duplicates_removed as f64)) }
                    span.sub { "by maintenance, " (h.runs) " daily runs" }
                }
            }

            h3 { "Rows per day" }
            p.meta { "By the day each row reached the lake (" code { "_ingested_at" } "; quarantine: " code { "quarantined_at" } ")." }
            (per_day_chart)
            @if !h.per_day.is_empty() {
                div.scroll {
                    table {
                        thead { tr { th { "day" } @for t in super::DAY_TABLES { th { (t) } } } }
                        tbody {
                            @for d in &h.per_day {
                                tr {
                                    td { (d.day) }
                                    @for n in &d.rows { td.num { (number(*n as f64)) } }
                                }
                            }
                        }
                    }
                }
            }

            h3 { "Quarantine" }
            @if h.quarantine.is_empty() {
                p.empty { "No record has been quarantined." }
            } @else {
                (quarantine_chart)
                div.scroll {
                    table {
                        thead { tr { th { "code" } th { "records" } th { "sample source" } th { "sample error" } th { "sample record" } } }
                        tbody {
                            @for q in &h.quarantine {
                                tr {
                                    td { code { (q.code) } }
                                    td.num { (number(q.count as f64)) }
                                    td { code { (q.sample_source) } }
                                    td { (q.sample_error) }
                                    td { code.raw { (q.sample_raw) } }
                                }
                            }
                        }
                    }
                }
            }

            h3 { "Lag from landing to lake" }
            @match &h.lag {
                Some(lag) => {
                    p.meta {
                        "Batch path: from the time a raw object landed (in its key) to the commit of its rows; "
                        (number(lag.rows as f64)) " rows from " (number(lag.objects as f64)) " objects. "
                        "Stream rows carry no arrival time and are not counted."
                    }
                    table.narrow {
                        thead { tr { th { "p50" } th { "p90" } th { "p99" } th { "max" } } }
                        tbody { tr {
                            td.num { (seconds(lag.p50)) } td.num { (seconds(lag.p90)) }
                            td.num { (seconds(lag.p99)) } td.num { (seconds(lag.max)) }
                        } }
                    }
                }
                None => p.empty { "No batch-path row with a landing time yet." }
            }

            h3 { "Last daily run" }
            @match &h.last_run {
                Some(run) => {
                    p.meta {
                        code { (run.file) } " · started " (run.started_at) " · "
                        (format!("{:.1}", run.elapsed_ms as f64 / 1000.0)) " s for the queries"
                    }
                    @if run.failures.is_empty() {
                        p.ok { "Every query and table maintenance succeeded." }
                    } @else {
                        ul.failures { @for f in &run.failures { li { (f) } } }
                    }
                    (run_chart)
                    div.scroll {
                        table {
                            thead { tr { th { "table" } th { "rows before" } th { "rows after" } th { "duplicates removed" } th { "files before" } th { "files after" } th { "vacuumed" } } }
                            tbody {
                                @for m in &run.maintenance {
                                    tr {
                                        td { (m.table) }
                                        @if let Some(e) = &m.error {
                                            td.failed colspan="6" { (e) }
                                        } @else {
                                            @for n in &m.numbers { td.num { (number(*n as f64)) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                None => p.empty { "The daily run (the run-queries function) has not run on this lake yet; it writes a summary of each run under " code { "_runs/" } "." }
            }
        }
    })
}

fn seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}
