//! The MCP server as an assistant meets it: rmcp's own client (not ours) drives the real binary
//! over stdio (`mta-sts-scan mcp`) and the `/mcp` endpoint of a running `serve`, both against the
//! test internet: initialize, tools/list, every tool, the resource, and invalid calls. Verdicts
//! must equal those of `check --json` and of the REST endpoint for the same domains.

mod common;

use std::sync::Arc;

use common::{Lab, lab};
use mta_sts_scan::issues::IssueCode;
use mta_sts_scan::serve::auth::ApiKeys;
use mta_sts_scan::serve::{ServeSettings, serve};
use rmcp::model::{CallToolRequestParams, CallToolResult, ReadResourceRequestParams};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::oneshot;

type Client = RunningService<RoleClient, ()>;

/// Domains with different verdicts: valid enforce, valid testing, invalid, uncovered MX, absent.
const DOMAINS: [&str; 5] = [
    "valid-enforce-1.test",
    "valid-testing-1.test",
    "record-multiple-1.test",
    "mx-uncovered-1.test",
    "no-sts-1.test",
];

/// The fields that make a verdict (everything but timings).
fn verdict(report: &Value) -> Value {
    let codes: Vec<&Value> = report["issues"]
        .as_array()
        .map(|issues| issues.iter().map(|issue| &issue["code"]).collect())
        .unwrap_or_default();
    json!({
        "domain": report["domain"],
        "outcome": report["outcome"],
        "has_mta_sts": report["has_mta_sts"],
        "mode": report["mode"],
        "severity": report["severity"],
        "issues": codes,
        "recommendations": report["recommendations"],
        "mx_uncovered": report["mx_uncovered"],
        "delivery_at_risk": report["delivery_at_risk"],
        "tls_rpt": report["tls_rpt"],
    })
}

fn check_json(lab: &Lab, domain: &str) -> Value {
    let output = lab
        .command("check")
        .args([domain, "--json", "--dns-attempts", "1"])
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "check --json {domain}: {error}: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .unwrap_or_else(|error| panic!("{tool}: {error}"))
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_tool_error(result: &CallToolResult, expected: &str) {
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let text = text_of(result);
    assert!(text.contains(expected), "{text:?} should say {expected:?}");
}

/// Everything an assistant does in one session; returns the verdict of each domain.
async fn exercise(client: &Client) -> Vec<Value> {
    let info = client.peer_info().expect("the server introduced itself");
    let server = info.server_info.as_ref().expect("server info");
    assert_eq!(server.name, "mta-sts-scan");
    assert!(info.capabilities.tools.is_some());
    assert!(info.capabilities.resources.is_some());

    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, ["check_many", "check_mta_sts", "explain_issue"]);
    for tool in &tools {
        assert!(
            tool.description.as_deref().is_some_and(|d| d.len() > 40),
            "{} needs a description",
            tool.name
        );
        assert_eq!(tool.input_schema.get("type"), Some(&json!("object")));
        let output = tool.output_schema.as_ref().expect("an output schema");
        assert_eq!(output.get("type"), Some(&json!("object")), "{}", tool.name);
    }
    let check_tool = tools.iter().find(|t| t.name == "check_mta_sts").unwrap();
    assert_eq!(check_tool.input_schema["required"], json!(["domain"]));
    let properties = check_tool.output_schema.as_ref().unwrap()["properties"].clone();
    assert!(properties.get("outcome").is_some() && properties.get("issues").is_some());

    // check_mta_sts: the report as structured content, a summary to quote as text.
    let mut verdicts = Vec::new();
    for domain in DOMAINS {
        let result = call(client, "check_mta_sts", json!({ "domain": domain })).await;
        assert_eq!(result.is_error, Some(false), "{domain}: {result:?}");
        let report = result
            .structured_content
            .clone()
            .expect("structured content");
        assert_eq!(report["domain"], domain);
        let summary = result.content[0]
            .as_text()
            .expect("a text summary")
            .text
            .clone();
        assert!(summary.starts_with(&format!("{domain}: ")), "{summary}");
        verdicts.push(verdict(&report));
    }
    let uncovered = call(
        client,
        "check_mta_sts",
        json!({ "domain": "mx-uncovered-1.test" }),
    )
    .await;
    let summary = text_of(&uncovered);
    assert!(summary.contains("Delivery is at risk"), "{summary}");
    assert!(summary.contains("mx_not_covered (error)"), "{summary}");
    assert!(
        summary.contains("What to do first: Add an mx line"),
        "{summary}"
    );

    // explain_issue: from the catalogue.
    let explained = call(client, "explain_issue", json!({ "code": "mx_not_covered" })).await;
    assert_eq!(explained.is_error, Some(false));
    let explanation = explained.structured_content.unwrap();
    assert_eq!(explanation["code"], "mx_not_covered");
    assert_eq!(explanation["severity"], "error");
    assert_eq!(explanation["rfc_section"], "RFC 8461 §4.1");
    assert_eq!(
        explanation["fix"].as_str(),
        IssueCode::MxNotCovered.recommendation()
    );

    // check_many: rows in order, through the pipeline, with the summary statistics.
    let many = call(client, "check_many", json!({ "domains": DOMAINS })).await;
    assert_eq!(many.is_error, Some(false), "{many:?}");
    let many = many.structured_content.unwrap();
    let rows = many["rows"].as_array().unwrap();
    assert_eq!(rows.len(), DOMAINS.len());
    for (row, single) in rows.iter().zip(&verdicts) {
        assert_eq!(row["domain"], single["domain"]);
        assert_eq!(row["outcome"], single["outcome"]);
        assert_eq!(row["issues"], single["issues"]);
    }
    assert_eq!(many["summary"]["rows"], DOMAINS.len());
    assert_eq!(many["summary"]["outcomes"]["valid"], 3);
    assert_eq!(many["summary"]["outcomes"]["invalid"], 1);
    assert_eq!(many["summary"]["outcomes"]["absent"], 1);

    // Bad input: tool errors with a message, and the session goes on.
    let not_a_domain = call(client, "check_mta_sts", json!({ "domain": "not a domain" })).await;
    assert_tool_error(&not_a_domain, "is not a domain name");
    let probe = call(
        client,
        "check_mta_sts",
        json!({ "domain": "valid-enforce-1.test", "probe_mx": true }),
    )
    .await;
    assert_tool_error(&probe, "started with --probe-mx");
    let unknown = call(client, "explain_issue", json!({ "code": "no_such_code" })).await;
    assert_tool_error(&unknown, "unknown issue code \"no_such_code\"");
    let too_many: Vec<String> = (0..101).map(|n| format!("d{n}.test")).collect();
    let too_many = call(client, "check_many", json!({ "domains": too_many })).await;
    assert_tool_error(&too_many, "at most 100 domains per call, got 101");
    let bad_list = call(
        client,
        "check_many",
        json!({ "domains": ["valid-enforce-1.test", "*.example.com"] }),
    )
    .await;
    assert_tool_error(&bad_list, "not domain names: \"*.example.com\"");
    let empty = call(client, "check_many", json!({ "domains": [] })).await;
    assert_tool_error(&empty, "at least one domain");
    let no_such_tool = client
        .call_tool(CallToolRequestParams::new("no_such_tool"))
        .await;
    assert!(no_such_tool.is_err(), "{no_such_tool:?}");
    let missing_argument = client
        .call_tool(CallToolRequestParams::new("check_mta_sts"))
        .await;
    assert!(
        missing_argument.is_err()
            || missing_argument
                .as_ref()
                .is_ok_and(|r| r.is_error == Some(true)),
        "{missing_argument:?}"
    );

    // The catalogue resource.
    let resources = client.list_all_resources().await.unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].uri, "mta-sts-scan://issues");
    let catalogue = client
        .read_resource(ReadResourceRequestParams::new("mta-sts-scan://issues"))
        .await
        .unwrap();
    let text = match &catalogue.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("not text: {other:?}"),
    };
    let catalogue: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(catalogue.len(), IssueCode::ALL.len());
    assert!(
        client
            .read_resource(ReadResourceRequestParams::new("mta-sts-scan://nothing"))
            .await
            .is_err()
    );
    verdicts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_session_against_the_test_internet_matches_check_json() {
    let lab = lab().await;
    let command = tokio::process::Command::from(lab.command("mcp"));
    let client: Client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    let verdicts = exercise(&client).await;
    client.cancel().await.unwrap();
    for (domain, over_mcp) in DOMAINS.iter().zip(verdicts) {
        assert_eq!(over_mcp, verdict(&check_json(&lab, domain)), "{domain}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_flags_are_checked_like_check_flags() {
    let output = common::binary()
        .args(["mcp", "--dns-attempts", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--dns-attempts"));
}

struct Served {
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

async fn start_serve(lab: &Lab, settings: ServeSettings) -> Served {
    let validator = Arc::new(lab.internet.scanner_config().build_validator().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, validator, settings, async move {
        let _ = stopped.await;
    }));
    Served {
        base_url,
        stop: Some(stop),
        task,
    }
}

async fn http_client(url: &str, key: Option<&str>) -> Result<Client, String> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(key) = key {
        config = config.auth_header(key.to_owned());
    }
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .map_err(|error| error.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoint_serves_the_same_tools_and_verdicts_as_rest() {
    let lab = lab().await;
    let mut served = start_serve(&lab, ServeSettings::default()).await;
    let client = http_client(&format!("{}/mcp", served.base_url), None)
        .await
        .unwrap();
    let verdicts = exercise(&client).await;
    client.cancel().await.unwrap();
    let rest = reqwest::Client::builder().no_proxy().build().unwrap();
    for (domain, over_mcp) in DOMAINS.iter().zip(verdicts) {
        let report: Value = rest
            .get(format!(
                "{}/v1/security/mta-sts?domain={domain}",
                served.base_url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(over_mcp, verdict(&report), "{domain}");
    }
    served.stop.take().unwrap().send(()).unwrap();
    assert_eq!(served.task.await.unwrap(), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoint_requires_the_api_key_when_keys_are_set() {
    let lab = lab().await;
    let key = "test-key-0123456789abcdef";
    let settings = ServeSettings {
        api_keys: Some(ApiKeys::new([key]).unwrap()),
        ..ServeSettings::default()
    };
    let served = start_serve(&lab, settings).await;
    let url = format!("{}/mcp", served.base_url);
    assert!(http_client(&url, None).await.is_err());
    assert!(
        http_client(&url, Some("wrong-key-0123456789abcdef"))
            .await
            .is_err()
    );
    let client = http_client(&url, Some(key)).await.unwrap();
    let result = call(
        &client,
        "check_mta_sts",
        json!({ "domain": "valid-enforce-1.test" }),
    )
    .await;
    assert_eq!(result.structured_content.unwrap()["outcome"], "valid");
    client.cancel().await.unwrap();

    // A Host header nobody allowed is refused (DNS rebinding protection).
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(&url)
        .bearer_auth(key)
        .header("host", "attacker.example")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN);
}
