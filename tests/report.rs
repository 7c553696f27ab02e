//! `mta-sts-scan report` on the demo's results, as a reader gets it: the HTML parses, has every
//! section, shows the numbers of `stats --json` (which it embeds), and a real browser
//! (Chromium from the distribution, when installed) runs its table script and renders it.

use std::path::Path;
use std::process::Command;

mod common;

use common::binary;
use mta_sts_scan::html_report::SECTIONS;

/// The browser; `CHROMIUM=/elsewhere` points the test at another build (or at none).
fn chromium_path() -> std::path::PathBuf {
    std::env::var_os("CHROMIUM")
        .map(Into::into)
        .unwrap_or_else(|| "/usr/bin/chromium".into())
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn text_of(dom: &tl::VDom, node: tl::NodeHandle) -> String {
    node.get(dom.parser())
        .unwrap()
        .inner_text(dom.parser())
        .trim()
        .to_owned()
}

/// The texts of every element the selector matches, in document order.
fn texts(dom: &tl::VDom, selector: &str) -> Vec<String> {
    dom.query_selector(selector)
        .unwrap()
        .map(|node| text_of(dom, node))
        .collect()
}

/// The texts of the elements inside element `id` that the selector matches (tl's selectors
/// have no descendant combinator).
fn texts_in(dom: &tl::VDom, id: &str, selector: &str) -> Vec<String> {
    let parser = dom.parser();
    let element = dom
        .get_element_by_id(id)
        .unwrap_or_else(|| panic!("no #{id}"))
        .get(parser)
        .unwrap()
        .as_tag()
        .unwrap();
    element
        .query_selector(parser, selector)
        .unwrap()
        .map(|node| text_of(dom, node))
        .collect()
}

fn json_script(dom: &tl::VDom, id: &str) -> serde_json::Value {
    let node = dom.get_element_by_id(id).unwrap();
    serde_json::from_str(&text_of(dom, node)).unwrap()
}

fn without_run(mut summary: serde_json::Value) -> serde_json::Value {
    summary.as_object_mut().unwrap().remove("run");
    summary
}

#[test]
fn the_demo_report_has_every_section_and_the_numbers_of_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    run(binary().args(["demo", "--quiet", "--dir"]).arg(dir.path()));
    let results = dir.path().join("results.csv");
    let report = dir.path().join("from-files.html");
    assert!(
        dir.path().join("report.html").is_file(),
        "demo writes its own report"
    );
    run(binary()
        .arg("report")
        .arg(&results)
        .arg("--summary")
        .arg(dir.path().join("summary.json"))
        .arg("-o")
        .arg(&report));
    let stats: serde_json::Value =
        serde_json::from_str(&run(binary().arg("stats").arg("--json").arg(&results))).unwrap();
    let scan_summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();

    let html = std::fs::read_to_string(&report).unwrap();
    let dom = tl::parse(&html, tl::ParserOptions::default().track_ids()).unwrap();
    assert_eq!(
        html.matches("<section").count(),
        html.matches("</section>").count()
    );
    let sections: Vec<String> = dom
        .query_selector("section")
        .unwrap()
        .filter_map(|node| {
            let tag = node.get(dom.parser())?.as_tag()?;
            Some(tag.attributes().id()?.as_utf8_str().into_owned())
        })
        .collect();
    let expected: Vec<&str> = SECTIONS.to_vec();
    assert_eq!(
        sections, expected,
        "the demo probes MX hosts: every section is there"
    );

    // One source of numbers: the embedded summary is `stats --json`, run metadata aside, and
    // the run metadata is the scan's.
    let embedded = json_script(&dom, "summary-data");
    assert_eq!(without_run(embedded.clone()), without_run(stats.clone()));
    assert_eq!(embedded["run"]["resolver"], scan_summary["run"]["resolver"]);
    let run_table = texts_in(&dom, "run", "td").join("\n");
    for key in ["tool_version", "resolver", "settings", "started"] {
        let value = scan_summary["run"][key].as_str().unwrap();
        assert!(run_table.contains(value), "run {key} {value}: {run_table}");
    }

    let n = |path: &str| -> u64 {
        path.split('.')
            .fold(&stats, |v, key| &v[key])
            .as_u64()
            .unwrap_or_else(|| panic!("{path} not in the summary"))
    };
    let cards: Vec<u64> = texts_in(&dom, "headline", ".value")
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(
        cards,
        [
            n("rows"),
            n("domains_with_mx"),
            n("mta_sts.records"),
            n("mta_sts.valid_policies"),
            n("modes.enforce"),
            n("delivery_at_risk"),
            n("mx_transport.delivery_blocked"),
            n("tls_rpt.among_mx_domains.count"),
            n("lookup_errors.domains.count"),
        ]
    );
    assert!(
        n("mx_transport.delivery_blocked") > 0,
        "the demo has blocked domains"
    );
    assert!(
        n("delivery_at_risk") > 0 && n("outcomes.invalid") > 0,
        "the demo covers them"
    );

    // Every chart is an inline SVG, and the charts carry the summary's counts.
    // Outcomes, mode, max_age, funnel, rank, TLD, hosting ×2, issues, TLS-RPT, and the MX
    // section's charts (the demo probes MX hosts).
    assert!(html.contains("MX hosts: the TLS funnel"));
    assert_eq!(html.matches("<svg").count(), 11);
    let chart_texts = texts(&dom, "text");
    for outcome in ["valid", "invalid", "absent", "error", "input_error"] {
        let count = n(&format!("outcomes.{outcome}"));
        assert!(
            chart_texts
                .iter()
                .any(|t| t.starts_with(&format!("{count} ("))),
            "outcome {outcome} = {count}"
        );
    }
    for (code, count) in stats["issues"].as_object().unwrap() {
        // The bar's label, then (after every label) its note "count (share)".
        assert!(chart_texts.contains(code), "issue {code} charted");
        let note = format!("{count} (");
        assert!(
            chart_texts.iter().any(|t| t.starts_with(&note)),
            "{code}: {note}"
        );
    }
    let funnel_table = texts_in(&dom, "funnel", "td");
    for key in ["attempted", "dns_failed", "tcp_failed", "tls_failed"] {
        let value = n(&format!("policy_fetch_funnel.{key}")).to_string();
        assert!(funnel_table.contains(&value), "funnel {key} {value}");
    }
    let tld_table = texts_in(&dom, "tld", "td");
    for tld in stats["by_tld_top20"].as_array().unwrap() {
        assert!(tld_table.contains(&tld["name"].as_str().unwrap().to_owned()));
        assert!(tld_table.contains(&tld["domains"].to_string()));
    }
    let rank_table = texts_in(&dom, "rank", "td");
    for bin in stats["by_rank"].as_array().unwrap() {
        assert!(rank_table.contains(&bin["name"].as_str().unwrap().to_owned()));
        assert!(rank_table.contains(&bin["mta_sts"].to_string()));
    }

    // The table's rows: every domain of the demo fits, the most urgent first.
    let table = json_script(&dom, "table-data");
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len() as u64, n("rows"));
    assert_eq!(rows[0][0], 0, "delivery at risk first");
    assert_eq!(rows[0][3], "valid");
    let priorities: Vec<u64> = rows.iter().map(|r| r[0].as_u64().unwrap()).collect();
    assert!(
        priorities.windows(2).all(|w| w[0] <= w[1]),
        "sorted by priority"
    );

    let intro = texts_in(&dom, "domains", ".intro").join(" ");
    let need_action = intro.split(' ').next().unwrap().to_owned();
    assert!(intro.contains(" need action"), "{intro}");
    render_in_chromium(&report, dir.path(), &need_action);
}

/// Renders the report in headless Chromium, when installed: the DOM after the script ran has
/// the first page of the table, and a screenshot is written (kept at $REPORT_PNG if set).
fn render_in_chromium(report: &Path, dir: &Path, need_action: &str) {
    let browser = chromium_path();
    if !browser.exists() {
        eprintln!(
            "skipped the browser check: {} is not installed (apt-get install chromium)",
            browser.display()
        );
        return;
    }
    let chromium = |extra: &[&str]| {
        let profile = tempfile::tempdir_in(dir).unwrap();
        let output = Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", report.display()))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let rendered = chromium(&["--dump-dom"]);
    let dom = tl::parse(&rendered, tl::ParserOptions::default().track_ids()).unwrap();
    let rows = texts_in(&dom, "domain-rows", "tr").len();
    assert_eq!(rows, 100, "the script rendered the first page of the table");
    let info = text_of(&dom, dom.get_element_by_id("table-info").unwrap());
    assert!(
        info.starts_with(&format!("{need_action} rows, page 1 of ")),
        "{info} / {need_action}"
    );
    assert!(texts_in(&dom, "nav", "a").len() >= 12, "navigation built");

    let png = dir.join("report.png");
    chromium(&[
        "--window-size=1280,4000",
        &format!("--screenshot={}", png.display()),
    ]);
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        bytes.len() > 50_000,
        "{} bytes: more than a blank page",
        bytes.len()
    );
    if let Some(keep) = std::env::var_os("REPORT_PNG") {
        std::fs::copy(&png, keep).unwrap();
    }
}

/// Writes `reports` as a result file of the format its name says.
fn write_results(path: &Path, reports: &[mta_sts_scan::report::DomainReport]) {
    use mta_sts_scan::output::{self, Format, OutputTarget, RunMetadata};
    let format = Format::from_path(path).unwrap();
    let mut writer = output::create_writer(
        &OutputTarget::File(path.to_path_buf()),
        format,
        &RunMetadata::default(),
    )
    .unwrap();
    for report in reports {
        writer.write(report).unwrap();
    }
    writer.finish().unwrap();
}

#[test]
fn shards_of_any_format_merge_into_one_report_like_stats() {
    use mta_sts_scan::mta_sts::policy::Mode;
    use mta_sts_scan::report::{DomainReport, Outcome};
    let dir = tempfile::tempdir().unwrap();
    let report = |n: i64| {
        let mut report = DomainReport::new(format!("d{n}.example.org"), String::new(), Some(n));
        report.mx_hosts = vec!["mx.example.org".into()];
        report.scanned_at = 1_700_000_000_000 + n;
        if n % 3 == 0 {
            report.outcome = Outcome::Valid;
            report.has_mta_sts = true;
            report.mode = Some(Mode::Testing);
        }
        report
    };
    let shards = [
        dir.path().join("r.shard-0-of-3.csv.gz"),
        dir.path().join("r.shard-1-of-3.parquet"),
        dir.path().join("r.shard-2-of-3.jsonl.zst"),
    ];
    for (k, shard) in shards.iter().enumerate() {
        let rows: Vec<_> = (0..30).filter(|n| n % 3 == k as i64).map(report).collect();
        write_results(shard, &rows);
    }
    let html = dir.path().join("report.html");
    run(binary().arg("report").args(&shards).arg("-o").arg(&html));
    let stats: serde_json::Value =
        serde_json::from_str(&run(binary().arg("stats").arg("--json").args(&shards))).unwrap();
    let html = std::fs::read_to_string(&html).unwrap();
    let dom = tl::parse(&html, tl::ParserOptions::default().track_ids()).unwrap();
    let embedded = json_script(&dom, "summary-data");
    assert_eq!(
        embedded, stats,
        "run metadata included: both name the files"
    );
    assert_eq!(embedded["rows"], 30);
    assert_eq!(embedded["modes"]["testing"], 10);
    // Ranks 0..29 all fall in the first bin; valid-but-testing rows need action.
    assert_eq!(texts_in(&dom, "rank", "td")[..2], ["1-1k", "30"]);
    let table = json_script(&dom, "table-data");
    assert_eq!(table["rows"].as_array().unwrap().len(), 30);
    assert_eq!(
        table["rows"][0][3], "valid",
        "not enforcing comes before absent"
    );
}
