//! The HTML report (`report`, `scan --report`): one self-contained page for the people who read
//! scan results — headline numbers, charts, a sortable and filterable per-domain table, and the
//! run's metadata.
//!
//! Every number on the page comes from the summary document ([`Statistics::summary`]), the same
//! value the summary JSON is written from, and that document is embedded in the page as well.
//! Charts are SVG drawn by `plotters` ([`charts`]); styles and the table's script are inline, so
//! the file opens without any network access. The table keeps at most a fixed number of rows,
//! the most urgent first ([`table`]), so memory while reading and the page's size stay bounded
//! on lists of any length.

pub mod charts;
pub mod table;

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::issues::{IssueCode, Severity};
use crate::output::{Format, read_results};
use crate::report::{DomainReport, format_millis, now_millis};
use crate::scan::stats::{RunInfo, Statistics};

use charts::{BLUE, Bar, GREEN, GREY, ORANGE, PURPLE, RED, TEAL, bar_chart, percent};
use table::{KeptRows, PRIORITIES, TableRows, script_safe};

/// Rows the per-domain table keeps by default: enough for any supplier list; a top-1M scan
/// shows its most urgent rows and says how many were left out.
pub const DEFAULT_MAX_ROWS: usize = 10_000;

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Reads result rows into the statistics and the table's rows.
#[derive(Debug, Clone)]
pub struct ReportBuilder {
    statistics: Statistics,
    table: TableRows,
}

impl ReportBuilder {
    /// A builder whose table keeps at most `max_rows` rows.
    pub fn new(max_rows: usize) -> ReportBuilder {
        ReportBuilder {
            statistics: Statistics::new(),
            table: TableRows::new(max_rows),
        }
    }

    pub fn add(&mut self, report: &DomainReport) {
        self.statistics.add(report);
        self.table.add(report);
    }

    /// Adds every row of a result file (any format; by extension unless `format` is given;
    /// Parquet part files too). Each file's statistics are counted on their own and then
    /// merged, as `stats` does.
    pub fn add_file(&mut self, path: &Path, format: Option<Format>) -> Result<(), String> {
        let mut file_statistics = Statistics::new();
        for row in read_results(path, format)? {
            let report = row.map_err(|e| format!("{}: {e}", path.display()))?;
            file_statistics.add(&report);
            self.table.add(&report);
        }
        self.statistics += &file_statistics;
        Ok(())
    }

    pub fn statistics(&self) -> &Statistics {
        &self.statistics
    }

    /// The page, with the builder's own statistics.
    pub fn render(self, run: &RunInfo) -> Result<String, String> {
        render(&self.statistics, run, self.table.finish())
    }

    /// The page with statistics counted elsewhere (the scan's own, for `scan --report`): the
    /// builder then only supplies the table.
    pub fn render_with(self, statistics: &Statistics, run: &RunInfo) -> Result<String, String> {
        render(statistics, run, self.table.finish())
    }
}

/// Run metadata for a report made from files: the scan's own metadata when its summary JSON is
/// given, otherwise what the rows tell (the time span of `scanned_at`).
pub fn run_info_for_files(
    files: &[std::path::PathBuf],
    statistics: &Statistics,
    summary_json: Option<&Path>,
) -> Result<RunInfo, String> {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let mut run = RunInfo {
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        input: names.join(" "),
        started: statistics.first_scanned_at.map(format_millis),
        finished: statistics.last_scanned_at.map(format_millis),
        ..RunInfo::default()
    };
    let Some(path) = summary_json else {
        return Ok(run);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --summary {}: {e}", path.display()))?;
    let summary: Value = serde_json::from_str(&text)
        .map_err(|e| format!("--summary {}: not JSON: {e}", path.display()))?;
    let scan = summary
        .get("run")
        .filter(|r| r.is_object())
        .ok_or_else(|| format!("--summary {}: no `run` object", path.display()))?;
    let text_of = |key: &str| scan.get(key).and_then(Value::as_str).map(str::to_owned);
    if let Some(version) = text_of("tool_version") {
        run.tool_version = version;
    }
    if let Some(input) = text_of("input") {
        run.input = input;
    }
    run.started = text_of("started").or(run.started);
    run.finished = text_of("finished").or(run.finished);
    run.wall_seconds = scan.get("wall_seconds").and_then(Value::as_f64);
    run.domains_per_second = scan.get("domains_per_second").and_then(Value::as_f64);
    run.resolver = text_of("resolver");
    run.settings = text_of("settings");
    run.interrupted = scan
        .get("interrupted")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(run)
}

/// Writes the page to `path`.
pub fn write_report(path: &Path, html: &str) -> Result<(), String> {
    std::fs::write(path, html)
        .map_err(|e| format!("cannot write the report {}: {e}", path.display()))
}

/// The page for these statistics and rows.
pub fn render(statistics: &Statistics, run: &RunInfo, rows: KeptRows) -> Result<String, String> {
    let summary = serde_json::to_value(statistics.summary(run))
        .map_err(|e| format!("cannot build the summary: {e}"))?;
    let mut page = Page::default();
    page.head(&summary);
    page.headline(&summary);
    page.outcomes(&summary)?;
    page.policies(&summary)?;
    page.funnel(&summary)?;
    page.mx_tls(&summary)?;
    page.rank(&summary)?;
    page.tld(&summary)?;
    page.hosting(&summary)?;
    page.issues(&summary)?;
    page.tls_rpt(&summary)?;
    page.errors(&summary);
    page.domains(&rows)?;
    page.run(&summary);
    page.tail(&summary, &rows)?;
    Ok(page.html)
}

/// The ids of the page's sections, in order; `mx-tls` only when the scan probed MX hosts.
pub const SECTIONS: [&str; 13] = [
    "headline", "outcomes", "policies", "funnel", "mx-tls", "rank", "tld", "hosting", "issues",
    "tls-rpt", "errors", "domains", "run",
];

#[derive(Default)]
struct Page {
    html: String,
    nav: Vec<(&'static str, &'static str)>,
}

/// HTML-escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The number at a dotted path of the summary (0 when absent).
fn count(summary: &Value, path: &str) -> u64 {
    lookup(summary, path).and_then(Value::as_u64).unwrap_or(0)
}

fn lookup<'a>(summary: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(summary, |value, key| value.get(key))
}

/// A `{name, ...counts}` list of the summary.
fn named_list<'a>(summary: &'a Value, path: &str) -> Vec<(&'a str, &'a Value)> {
    lookup(summary, path)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| Some((item.get("name")?.as_str()?, item)))
                .collect()
        })
        .unwrap_or_default()
}

impl Page {
    fn push(&mut self, text: &str) {
        self.html.push_str(text);
    }

    fn section(&mut self, id: &'static str, title: &'static str, intro: &str) {
        self.nav.push((id, title));
        let _ = write!(self.html, "<section id=\"{id}\"><h2>{}</h2>", escape(title));
        if !intro.is_empty() {
            let _ = write!(self.html, "<p class=\"intro\">{intro}</p>");
        }
    }

    fn end_section(&mut self) {
        self.push("</section>\n");
    }

    fn chart(&mut self, title: &str, bars: &[Bar], unit: &str) -> Result<(), String> {
        let svg = bar_chart(title, bars, unit)?;
        self.push("<figure class=\"chart\">");
        self.push(&svg);
        self.push("</figure>");
        Ok(())
    }

    /// A table of label → value rows.
    fn table(&mut self, class: &str, header: &[&str], rows: &[Vec<String>]) {
        let _ = write!(self.html, "<table class=\"{class}\"><thead><tr>");
        for cell in header {
            let _ = write!(self.html, "<th>{}</th>", escape(cell));
        }
        self.push("</tr></thead><tbody>");
        for row in rows {
            self.push("<tr>");
            for cell in row {
                let _ = write!(self.html, "<td>{}</td>", escape(cell));
            }
            self.push("</tr>");
        }
        self.push("</tbody></table>");
    }

    fn head(&mut self, summary: &Value) {
        let input = lookup(summary, "run.input")
            .and_then(Value::as_str)
            .unwrap_or("");
        let _ = write!(
            self.html,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
             <title>MTA-STS report: {}</title><style>{STYLE}</style></head>\n<body>\
             <header><h1>MTA-STS and TLS-RPT report</h1><p class=\"subtitle\">{}</p>\
             <nav id=\"nav\"></nav></header><main>\n",
            escape(input),
            escape(input)
        );
    }

    fn headline(&mut self, s: &Value) {
        self.section("headline", "Headline numbers", "");
        let with_mx = count(s, "domains_with_mx");
        let valid = count(s, "mta_sts.valid_policies");
        let mut cards: Vec<(&str, u64, String, &str)> = vec![
            (
                "Domains",
                count(s, "rows"),
                "rows in the results".to_owned(),
                "",
            ),
            (
                "With MX",
                with_mx,
                format!("{} receive mail", percent(with_mx, count(s, "rows"))),
                "",
            ),
            (
                "MTA-STS records",
                count(s, "mta_sts.records"),
                format!(
                    "{} of MX domains",
                    percent(count(s, "mta_sts.records_among_mx_domains.count"), with_mx)
                ),
                "",
            ),
            (
                "Valid policies",
                valid,
                format!(
                    "{} of MX domains",
                    percent(count(s, "mta_sts.valid_among_mx_domains.count"), with_mx)
                ),
                "good",
            ),
            (
                "Enforce",
                count(s, "modes.enforce"),
                format!(
                    "{} of valid policies",
                    percent(count(s, "modes.enforce"), valid)
                ),
                "good",
            ),
            (
                "Delivery at risk",
                count(s, "delivery_at_risk"),
                "enforce, but an MX would be refused".to_owned(),
                "bad",
            ),
        ];
        // Spec §7: shown when the scan probed MX hosts.
        if lookup(s, "mx_transport.probed_domains")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            > 0
            && let Some(blocked) =
                lookup(s, "mx_transport.delivery_blocked").and_then(Value::as_u64)
        {
            cards.push((
                "Delivery blocked",
                blocked,
                "every MX would be refused".to_owned(),
                "bad",
            ));
        }
        cards.push((
            "TLS-RPT",
            count(s, "tls_rpt.among_mx_domains.count"),
            format!(
                "{} of MX domains",
                percent(
                    count(s, "tls_rpt.among_mx_domains.count"),
                    count(s, "tls_rpt.among_mx_domains.of")
                )
            ),
            "",
        ));
        cards.push((
            "Lookup errors",
            count(s, "lookup_errors.domains.count"),
            "domains with a failed lookup".to_owned(),
            if count(s, "lookup_errors.domains.count") > 0 {
                "warn"
            } else {
                ""
            },
        ));
        self.push("<div class=\"cards\">");
        for (label, value, note, class) in cards {
            let _ = write!(
                self.html,
                "<div class=\"card {class}\"><div class=\"value\">{value}</div>\
                 <div class=\"label\">{}</div><div class=\"note\">{}</div></div>",
                escape(label),
                escape(&note)
            );
        }
        self.push("</div>");
        if lookup(s, "run.interrupted").and_then(Value::as_bool) == Some(true) {
            self.push(
                "<p class=\"alert\">The scan was interrupted: these are partial results.</p>",
            );
        }
        self.end_section();
    }

    fn outcomes(&mut self, s: &Value) -> Result<(), String> {
        self.section(
            "outcomes",
            "Outcomes",
            "The verdict per domain: <b>valid</b> policy, <b>invalid</b> (senders ignore it), \
             <b>absent</b> (no MTA-STS record), <b>error</b> (a lookup failed), \
             <b>input_error</b> (not a domain).",
        );
        let rows = count(s, "rows");
        let colors = [GREEN, RED, GREY, ORANGE, PURPLE];
        let bars: Vec<Bar> = crate::report::Outcome::ALL
            .iter()
            .zip(colors)
            .map(|(outcome, color)| {
                let n = count(s, &format!("outcomes.{}", outcome.as_str()));
                Bar::share(outcome.as_str(), n, rows, color)
            })
            .collect();
        self.chart("Outcome shares (of all rows)", &bars, "")?;
        self.end_section();
        Ok(())
    }

    fn policies(&mut self, s: &Value) -> Result<(), String> {
        self.section(
            "policies",
            "Policy mode and max_age",
            "Modes among valid policies; <code>max_age</code> among fetched policies \
             (RFC 8461 recommends weeks).",
        );
        let valid = count(s, "mta_sts.valid_policies");
        let modes =
            [("enforce", GREEN), ("testing", ORANGE), ("none", GREY)].map(|(mode, color)| {
                Bar::share(mode, count(s, &format!("modes.{mode}")), valid, color)
            });
        self.chart("Mode distribution (valid policies)", &modes, "")?;
        let buckets = [
            ("under_1_day", "< 1 day", ORANGE),
            ("1_day_to_1_week", "1 day to < 1 week", BLUE),
            ("1_week_to_1_year", "1 week to 1 year", GREEN),
            ("invalid", "invalid", RED),
        ];
        let fetched: u64 = buckets
            .iter()
            .map(|(key, _, _)| count(s, &format!("max_age.{key}")))
            .sum();
        let bars: Vec<Bar> = buckets
            .iter()
            .map(|(key, label, color)| {
                Bar::share(*label, count(s, &format!("max_age.{key}")), fetched, *color)
            })
            .collect();
        self.chart("max_age distribution (fetched policies)", &bars, "")?;
        self.end_section();
        Ok(())
    }

    fn funnel(&mut self, s: &Value) -> Result<(), String> {
        self.section(
            "funnel",
            "Policy-fetch funnel",
            "Domains with an MTA-STS record, and how far their policy fetch got \
             (RFC 8461 §3.3: DNS → TCP → TLS → HTTP → syntax).",
        );
        let funnel = lookup(s, "policy_fetch_funnel")
            .cloned()
            .unwrap_or(Value::Null);
        let field = |key: &str| funnel.get(key).and_then(Value::as_u64);
        let known = [
            "attempted",
            "dns_failed",
            "tcp_failed",
            "tls_failed",
            "http_failed",
        ]
        .iter()
        .all(|key| field(key).is_some());
        if known {
            let n = |key: &str| field(key).unwrap_or(0);
            let attempted = n("attempted");
            let stages = [
                ("policy host resolved (DNS)", n("dns_failed")),
                ("connected (TCP)", n("tcp_failed")),
                ("TLS certificate valid", n("tls_failed")),
                ("HTTP 200 in time", n("http_failed") + n("timed_out")),
                ("policy parses (syntax)", n("syntax_failed")),
            ];
            let mut left = attempted;
            let mut bars = vec![Bar::rate("fetch attempted", attempted, attempted, BLUE)];
            let mut rows = vec![vec![
                "fetch attempted".to_owned(),
                attempted.to_string(),
                String::new(),
            ]];
            for (label, failed) in stages {
                left = left.saturating_sub(failed);
                bars.push(Bar::rate(label, left, attempted, TEAL));
                rows.push(vec![label.to_owned(), left.to_string(), failed.to_string()]);
            }
            self.chart(
                "Policy fetches passing each stage (% of attempted)",
                &bars,
                "%",
            )?;
            self.table("numbers", &["stage", "passed", "failed here"], &rows);
            if let Some(timed_out) = field("timed_out") {
                let _ = write!(
                    self.html,
                    "<p class=\"note\">HTTP failures include {timed_out} timeouts. \
                     Usable policies: {}.</p>",
                    n("usable")
                );
            }
        } else {
            self.generic_counts(&funnel, "Policy-fetch funnel")?;
        }
        self.end_section();
        Ok(())
    }

    /// Every number of an object as a bar, for summary parts this version does not know.
    fn generic_counts(&mut self, object: &Value, title: &str) -> Result<(), String> {
        let bars: Vec<Bar> = object
            .as_object()
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|(key, value)| Some(Bar::count(key.clone(), value.as_u64()?, TEAL)))
                    .collect()
            })
            .unwrap_or_default();
        self.chart(title, &bars, "")
    }

    /// Spec §7, MX transport security: rendered when the scan probed MX hosts
    /// (`mx_transport.probed_domains` > 0): the MX-host funnel, delivery at risk by cause,
    /// blocked domains, MX hosting and the top MX providers with their TLS state.
    fn mx_tls(&mut self, s: &Value) -> Result<(), String> {
        let probed = lookup(s, "mx_transport.probed_domains")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if probed == 0 {
            return Ok(());
        }
        self.section(
            "mx-tls",
            "MX transport security",
            "Every MX host probed with EHLO and STARTTLS (RFC 8461 §4.2): how many answered, \
             offered STARTTLS, completed the handshake and presented a certificate valid for their \
             name. An enforcing sender refuses the others.",
        );
        if let Some(funnel) = lookup(s, "mx_transport.mx_host_funnel") {
            let bars: Vec<Bar> = [
                ("probed", "hosts"),
                ("connected", "connected"),
                ("STARTTLS offered", "starttls_offered"),
                ("handshake", "handshake"),
                ("certificate valid", "certificate_valid"),
            ]
            .iter()
            .map(|(label, key)| Bar::count((*label).to_owned(), count(funnel, key), TEAL))
            .collect();
            self.chart("MX hosts: the TLS funnel", &bars, "")?;
            if let Some(statuses) = lookup(funnel, "by_status") {
                self.generic_counts(statuses, "MX hosts by status")?;
            }
        }
        let rows = vec![
            vec!["domains probed".to_owned(), probed.to_string()],
            vec![
                "every MX valid".to_owned(),
                count(s, "mx_transport.every_mx_valid").to_string(),
            ],
            vec![
                "delivery at risk: uncovered MX".to_owned(),
                count(s, "mx_transport.delivery_at_risk_by_cause.uncovered").to_string(),
            ],
            vec![
                "delivery at risk: MX TLS failure".to_owned(),
                count(s, "mx_transport.delivery_at_risk_by_cause.tls").to_string(),
            ],
            vec![
                "delivery blocked (every MX refused)".to_owned(),
                count(s, "mx_transport.delivery_blocked").to_string(),
            ],
            vec![
                "MX self-managed".to_owned(),
                count(s, "mx_transport.mx_hosting.self_managed").to_string(),
            ],
            vec![
                "MX third-party (provider with 50+ domains)".to_owned(),
                count(s, "mx_transport.mx_hosting.third_party").to_string(),
            ],
        ];
        self.table("numbers", &["", "domains"], &rows);
        let providers: Vec<Vec<String>> = lookup(s, "mx_transport.top_mx_providers")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|p| {
                        let mut row = vec![
                            p.get("provider")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned(),
                        ];
                        for key in ["domains", "valid", "failed", "unknown"] {
                            row.push(count(p, key).to_string());
                        }
                        row
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !providers.is_empty() {
            self.table(
                "numbers",
                &[
                    "MX provider (primary MX)",
                    "domains",
                    "TLS valid",
                    "TLS failed",
                    "unknown",
                ],
                &providers,
            );
        }
        self.end_section();
        Ok(())
    }

    fn group_section(
        &mut self,
        s: &Value,
        path: &str,
        chart_title: &str,
        first_column: &str,
    ) -> Result<(), String> {
        let groups = named_list(s, path);
        let bars: Vec<Bar> = groups
            .iter()
            .map(|(name, g)| Bar::rate(*name, count(g, "mta_sts"), count(g, "domains"), BLUE))
            .collect();
        self.chart(chart_title, &bars, "%")?;
        let rows: Vec<Vec<String>> = groups
            .iter()
            .map(|(name, g)| {
                let mut row = vec![(*name).to_owned()];
                for key in ["domains", "with_mx", "mta_sts", "valid", "enforce"] {
                    row.push(count(g, key).to_string());
                }
                row
            })
            .collect();
        self.table(
            "numbers",
            &[
                first_column,
                "domains",
                "with MX",
                "MTA-STS",
                "valid",
                "enforce",
            ],
            &rows,
        );
        Ok(())
    }

    fn rank(&mut self, s: &Value) -> Result<(), String> {
        self.section(
            "rank",
            "Adoption by rank",
            "Share of domains with an MTA-STS record per popularity bin (log scale).",
        );
        if named_list(s, "by_rank").is_empty() {
            self.push("<p class=\"note\">The input had no ranks.</p>");
        } else {
            self.group_section(
                s,
                "by_rank",
                "MTA-STS records by rank bin (% of domains)",
                "rank bin",
            )?;
        }
        self.end_section();
        Ok(())
    }

    fn tld(&mut self, s: &Value) -> Result<(), String> {
        self.section(
            "tld",
            "Adoption by TLD",
            "The 20 TLDs with the most domains.",
        );
        self.group_section(
            s,
            "by_tld_top20",
            "MTA-STS records by TLD (% of domains)",
            "TLD",
        )?;
        self.end_section();
        Ok(())
    }

    fn hosting(&mut self, s: &Value) -> Result<(), String> {
        self.section(
            "hosting",
            "Policy hosting",
            "Domains with MTA-STS: policy served by the domain itself, or delegated by CNAME to \
             a provider (grouped by the provider's registrable domain).",
        );
        let own = count(s, "policy_hosting.self_hosted");
        let delegated = count(s, "policy_hosting.delegated");
        let total = own + delegated;
        self.chart(
            "Self-hosted vs delegated",
            &[
                Bar::share("self-hosted", own, total, BLUE),
                Bar::share("delegated", delegated, total, PURPLE),
            ],
            "",
        )?;
        let providers: Vec<Bar> = named_list(s, "policy_hosting.top10_providers")
            .iter()
            .map(|(name, v)| Bar::share(*name, count(v, "count"), delegated, PURPLE))
            .collect();
        self.chart("Top delegation targets", &providers, "")?;
        self.end_section();
        Ok(())
    }

    fn issues(&mut self, s: &Value) -> Result<(), String> {
        self.section(
            "issues",
            "Issues",
            "Domains carrying each issue code (a domain counts once per code). Red: violated \
             MUST; orange: violated SHOULD; blue: information.",
        );
        let rows = count(s, "rows");
        let mut issues: Vec<(&str, u64)> = lookup(s, "issues")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter_map(|(code, n)| Some((code.as_str(), n.as_u64()?)))
                    .collect()
            })
            .unwrap_or_default();
        issues.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let bars: Vec<Bar> = issues
            .iter()
            .map(|(code, n)| {
                let color = match IssueCode::from_name(code).map(IssueCode::default_severity) {
                    Some(Severity::Error) => RED,
                    Some(Severity::Warning) => ORANGE,
                    _ => BLUE,
                };
                Bar::share(*code, *n, rows, color)
            })
            .collect();
        self.chart("Issue histogram (domains per code)", &bars, "")?;
        self.end_section();
        Ok(())
    }

    fn tls_rpt(&mut self, s: &Value) -> Result<(), String> {
        self.section(
            "tls-rpt",
            "TLS-RPT",
            "TLS reporting (RFC 8460) among domains with MX and among domains with MTA-STS \
             (domains whose <code>_smtp._tls</code> lookup failed are left out of both).",
        );
        let bars = [
            Bar::rate(
                "among MX domains",
                count(s, "tls_rpt.among_mx_domains.count"),
                count(s, "tls_rpt.among_mx_domains.of"),
                TEAL,
            ),
            Bar::rate(
                "among MTA-STS domains",
                count(s, "tls_rpt.among_mta_sts_domains.count"),
                count(s, "tls_rpt.among_mta_sts_domains.of"),
                TEAL,
            ),
        ];
        self.chart("TLS-RPT adoption", &bars, "%")?;
        let cell = |key: &str| count(s, &format!("tls_rpt.{key}")).to_string();
        self.table(
            "numbers matrix",
            &["domains with MX", "TLS-RPT", "no TLS-RPT"],
            &[
                vec![
                    "MTA-STS".to_owned(),
                    cell("mta_sts_and_tls_rpt"),
                    cell("mta_sts_only"),
                ],
                vec![
                    "no MTA-STS".to_owned(),
                    cell("tls_rpt_only"),
                    cell("neither"),
                ],
            ],
        );
        self.end_section();
        Ok(())
    }

    fn errors(&mut self, s: &Value) {
        let failed = count(s, "lookup_errors.domains.count");
        let of = count(s, "lookup_errors.domains.of");
        let intro = format!(
            "{failed} of {of} domains ({}) had a lookup that failed (their verdict may be \
             incomplete: scan them again).",
            percent(failed, of)
        );
        self.section("errors", "Lookup errors", &escape(&intro));
        let rows: Vec<Vec<String>> = named_list(s, "lookup_errors.top_causes")
            .iter()
            .map(|(name, v)| vec![(*name).to_owned(), count(v, "count").to_string()])
            .collect();
        if !rows.is_empty() {
            self.table("numbers", &["cause", "domains"], &rows);
        }
        self.end_section();
    }

    fn domains(&mut self, rows: &KeptRows) -> Result<(), String> {
        let shown = rows.rows.len();
        let mut intro = format!(
            "{} of {} domains need action (priorities 1–6 below). The table is sorted by \
             priority; click a column to sort, type to filter.",
            rows.actionable(),
            rows.seen
        );
        if rows.left_out > 0 {
            let _ = write!(
                intro,
                " <strong class=\"left-out\">{} rows left out</strong>: the table holds the \
                 {shown} most urgent rows; the rest are in the result files.",
                rows.left_out
            );
        }
        self.section("domains", "Domains", &intro);
        let counts: Vec<Vec<String>> = PRIORITIES
            .iter()
            .zip(rows.by_priority)
            .enumerate()
            .map(|(i, (label, n))| vec![format!("{}. {label}", i + 1), n.to_string()])
            .collect();
        self.table("numbers priorities", &["priority", "domains"], &counts);
        self.push(
            "<div class=\"controls\"><label>Show <select id=\"view\"></select></label> \
             <label>Filter <input id=\"filter\" type=\"search\" placeholder=\"domain, verdict, issue code\"></label> \
             <span id=\"table-info\"></span> <button id=\"prev\" type=\"button\">‹ previous</button>\
             <button id=\"next\" type=\"button\">next ›</button></div>\
             <table id=\"domain-table\" class=\"domains\"><thead><tr>\
             <th data-key=\"0\">priority</th><th data-key=\"1\">domain</th><th data-key=\"2\">rank</th>\
             <th data-key=\"3\">verdict</th><th data-key=\"4\">mode</th><th data-key=\"5\">severity</th>\
             <th data-key=\"6\">issues</th><th data-key=\"7\">recommendations</th></tr></thead>\
             <tbody id=\"domain-rows\"></tbody></table>\
             <noscript><p class=\"alert\">The table needs JavaScript; the numbers above do not.</p></noscript>",
        );
        self.end_section();
        Ok(())
    }

    fn run(&mut self, s: &Value) {
        self.section(
            "run",
            "Run metadata",
            "What produced these results, to reproduce them.",
        );
        let run = lookup(s, "run").cloned().unwrap_or(Value::Null);
        let text = |key: &str| match run.get(key) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if n.is_f64() => format!("{x:.2}"),
                _ => n.to_string(),
            },
            Some(Value::Bool(b)) => b.to_string(),
            _ => "-".to_owned(),
        };
        let rows: Vec<Vec<String>> = [
            ("tool version", "tool_version"),
            ("input", "input"),
            ("started", "started"),
            ("finished", "finished"),
            ("wall time (s)", "wall_seconds"),
            ("domains per second", "domains_per_second"),
            ("resolver", "resolver"),
            ("settings", "settings"),
            ("interrupted", "interrupted"),
        ]
        .iter()
        .map(|(label, key)| vec![(*label).to_owned(), text(key)])
        .chain(std::iter::once(vec![
            "report generated".to_owned(),
            format!(
                "{} by mta-sts-scan {}",
                format_millis(now_millis()),
                env!("CARGO_PKG_VERSION")
            ),
        ]))
        .collect();
        self.table("numbers run", &["", "value"], &rows);
        self.end_section();
    }

    fn tail(&mut self, summary: &Value, rows: &KeptRows) -> Result<(), String> {
        let summary_json =
            serde_json::to_string(summary).map_err(|e| format!("cannot embed the summary: {e}"))?;
        let nav = serde_json::to_string(&self.nav)
            .map_err(|e| format!("cannot embed the navigation: {e}"))?;
        let _ = write!(
            self.html,
            "</main><footer>Made by mta-sts-scan {}. The summary document behind every number \
             is embedded in this file (<code>#summary-data</code>).</footer>\n\
             <script type=\"application/json\" id=\"summary-data\">{}</script>\n\
             <script type=\"application/json\" id=\"table-data\">{}</script>\n\
             <script type=\"application/json\" id=\"nav-data\">{}</script>\n\
             <script>{SCRIPT}</script>\n</body></html>\n",
            env!("CARGO_PKG_VERSION"),
            script_safe(&summary_json),
            rows.to_script_json()?,
            script_safe(&nav),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issues::Issue;
    use crate::mta_sts::policy::Mode;
    use crate::report::Outcome;

    fn sample() -> ReportBuilder {
        let mut builder = ReportBuilder::new(100);
        for n in 0..40 {
            let mut report =
                DomainReport::new(format!("d{n}.example"), String::new(), Some(n * 400));
            report.mx_hosts = vec!["mx.example".into()];
            match n % 4 {
                0 => {
                    report.outcome = Outcome::Valid;
                    report.has_mta_sts = true;
                    report.mode = Some(Mode::Enforce);
                    report.policy_url =
                        Some("https://mta-sts.d.example/.well-known/mta-sts.txt".into());
                    report.policy_sha256 = Some("00".into());
                    report.max_age = Some(604_800);
                }
                1 => {
                    report.outcome = Outcome::Invalid;
                    report.has_mta_sts = true;
                    report
                        .issues
                        .push(Issue::new(IssueCode::PolicySyntax, "bad line"));
                }
                _ => report.outcome = Outcome::Absent,
            }
            builder.add(&report);
        }
        builder
    }

    #[test]
    fn every_section_is_on_the_page_and_the_mx_section_only_with_data() {
        let run = RunInfo {
            tool_version: "9.9.9".into(),
            input: "list <1>.csv".into(),
            resolver: Some("127.0.0.1:53".into()),
            ..RunInfo::default()
        };
        let html = sample().render(&run).unwrap();
        for id in SECTIONS.iter().filter(|id| **id != "mx-tls") {
            assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
        assert!(!html.contains("<section id=\"mx-tls\">"));
        assert!(html.contains("list &lt;1&gt;.csv"), "input escaped");
        assert!(html.contains("<td>127.0.0.1:53</td>"));
        // No reference to anything outside the file.
        for outside in ["http://", "src=\"", "href=\"http", "@import", "url("] {
            let unexpected = html
                .match_indices(outside)
                .map(|(i, _)| &html[i.saturating_sub(60)..(i + 60).min(html.len())])
                .find(|context| {
                    !context.contains("www.w3.org") && !context.contains("mta-sts.d.example")
                });
            assert!(unexpected.is_none(), "{outside}: {unexpected:?}");
        }
    }

    #[test]
    fn the_page_shows_the_numbers_of_the_summary() {
        let builder = sample();
        let statistics = builder.statistics().clone();
        let run = RunInfo::default();
        let html = builder.render(&run).unwrap();
        let embedded = html
            .split("<script type=\"application/json\" id=\"summary-data\">")
            .nth(1)
            .and_then(|rest| rest.split("</script>").next())
            .unwrap();
        let embedded: Value = serde_json::from_str(embedded).unwrap();
        assert_eq!(
            embedded,
            serde_json::to_value(statistics.summary(&run)).unwrap()
        );
        // 40 rows, 10 valid, 10 invalid, 20 absent, 10 enforce; 20 MTA-STS records.
        for card in [
            ">40</div><div class=\"label\">Domains<",
            ">10</div><div class=\"label\">Valid policies<",
            ">20</div><div class=\"label\">MTA-STS records<",
            ">10</div><div class=\"label\">Enforce<",
        ] {
            assert!(html.contains(card), "{card}");
        }
        let texts = charts::svg_texts(&html);
        assert!(
            texts.contains(&"10 (25.00%)".to_owned()),
            "valid share in the outcome chart"
        );
        assert!(
            texts.contains(&"policy_syntax".to_owned()),
            "issue histogram label"
        );
    }

    #[test]
    fn an_mx_probe_section_appears_when_the_summary_has_one() {
        let mut page = Page::default();
        let summary = serde_json::json!({"mx_transport": {
            "probed_domains": 3,
            "delivery_blocked": 1,
            "mx_host_funnel": {"hosts": 12, "connected": 11, "starttls_offered": 10,
                "handshake": 9, "certificate_valid": 8, "by_status": {"valid": 8}},
            "top_mx_providers": [{"provider": "example.net", "domains": 3, "valid": 2,
                "failed": 1, "unknown": 0}]
        }});
        page.mx_tls(&summary).unwrap();
        assert!(page.html.contains("<section id=\"mx-tls\">"));
        let texts = charts::svg_texts(&page.html);
        assert!(texts.contains(&"probed".to_owned()) && texts.contains(&"12".to_owned()));
        assert!(page.html.contains("example.net"));
        let mut empty = Page::default();
        empty
            .mx_tls(&serde_json::json!({"mx_transport": {"probed_domains": 0}}))
            .unwrap();
        assert!(!empty.html.contains("mx-tls"), "no probe, no section");
    }

    #[test]
    fn a_huge_list_gives_a_bounded_page_that_says_what_it_left_out() {
        let mut builder = ReportBuilder::new(DEFAULT_MAX_ROWS);
        for n in 0..120_000 {
            let mut report =
                DomainReport::new(format!("domain-{n}.example"), String::new(), Some(n + 1));
            report.outcome = if n % 50 == 0 {
                Outcome::Invalid
            } else {
                Outcome::Absent
            };
            builder.add(&report);
        }
        let html = builder.render(&RunInfo::default()).unwrap();
        assert!(html.len() < 3_000_000, "{} bytes", html.len());
        assert!(html.contains("110000 rows left out"), "left-out count");
        assert!(html.contains("2400 of 120000 domains need action"));
    }
}
