//! The MCP server (Model Context Protocol, on the official Rust SDK `rmcp`), so AI assistants can
//! run the check and explain it: tools `check_mta_sts`, `explain_issue` and `check_many`, and the
//! issue catalogue as a resource. `mta-sts-scan mcp` serves it over stdio; `serve` mounts it at
//! `/mcp` (streamable HTTP, stateless, JSON answers). Bad input is a tool error with a message the
//! assistant can relay, never a crash.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, JsonObject, ListResourcesResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    Resource, ResourceContents, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{
    ErrorData, Json, RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::checks::{CheckRunner, MAX_DOMAINS_PER_LIST, mx_probe_allowed, plain_summary};
use super::schema::report_schema;
use crate::issues::IssueCode;
use crate::mta_sts::policy::Mode;
use crate::report::DomainReport;

/// URI of the issue catalogue resource.
pub const ISSUES_URI: &str = "mta-sts-scan://issues";

/// What the server tells an assistant about itself at initialisation.
const INSTRUCTIONS: &str = "Checks a domain's MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) setup, which protects inbound mail against TLS downgrade. Use check_mta_sts for one domain and quote its text summary; explain_issue tells what an issue code means and how to fix it; check_many checks up to 100 domains and gives adoption statistics. The resource mta-sts-scan://issues lists every issue code.";

/// `check_mta_sts` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CheckMtaStsParams {
    /// The domain to check, e.g. example.com (internationalised names are accepted).
    pub domain: String,
    /// Also connect to each MX host and check its STARTTLS certificate against the policy.
    /// Not available in this build: true gives a tool error.
    #[serde(default)]
    pub probe_mx: bool,
}

/// `explain_issue` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExplainIssueParams {
    /// An issue code as a report gives it in issues[].code, e.g. mx_not_covered.
    pub code: String,
}

/// `check_many` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CheckManyParams {
    /// The domains to check: 1 to 100.
    #[schemars(length(min = 1, max = 100))]
    pub domains: Vec<String>,
}

/// What an issue code means, from the issue catalogue.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IssueExplanation {
    /// The stable code.
    pub code: String,
    /// Default severity: error (senders ignore the policy or a MUST is violated), warning, info.
    pub severity: String,
    /// How the severity changes with the context, when it does.
    pub severity_depends_on: Option<String>,
    /// When the code is reported.
    pub meaning: String,
    /// Whether the finding makes senders ignore the policy (outcome invalid).
    pub invalidates_policy: bool,
    /// Where the rule is written.
    pub rfc_section: Option<String>,
    /// What the domain owner should do, if anything.
    pub fix: Option<String>,
}

impl IssueExplanation {
    pub fn of(code: IssueCode) -> IssueExplanation {
        IssueExplanation {
            code: code.as_str().to_owned(),
            severity: code.default_severity().as_str().to_owned(),
            severity_depends_on: code.severity_note().map(str::to_owned),
            meaning: code.when().to_owned(),
            invalidates_policy: code.invalidates_policy(),
            rfc_section: code.rfc_section().map(str::to_owned),
            fix: code.recommendation().map(str::to_owned),
        }
    }
}

/// One domain of a `check_many` answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListRow {
    /// The domain in A-labels (empty when the value is not a domain name).
    pub domain: String,
    /// The value as given.
    pub input: String,
    /// valid, invalid, absent, error or input_error.
    pub outcome: String,
    /// The policy's mode: enforce, testing or none.
    pub mode: Option<String>,
    /// The worst severity among the issues.
    pub severity: String,
    pub has_mta_sts: bool,
    pub tls_rpt: bool,
    /// An enforced policy leaves an MX host uncovered.
    pub delivery_at_risk: bool,
    /// The issue codes found (explain_issue explains each).
    pub issues: Vec<String>,
    /// Why a lookup failed.
    pub error: Option<String>,
}

impl ListRow {
    fn of(report: &DomainReport) -> ListRow {
        ListRow {
            domain: report.domain.clone(),
            input: report.input.clone(),
            outcome: report.outcome.as_str().to_owned(),
            mode: report.mode.map(|mode| Mode::as_str(mode).to_owned()),
            severity: report.severity().as_str().to_owned(),
            has_mta_sts: report.has_mta_sts,
            tls_rpt: report.tls_rpt,
            delivery_at_risk: report.delivery_at_risk,
            issues: report
                .issues
                .iter()
                .map(|issue| issue.code.as_str().to_owned())
                .collect(),
            error: report.error.clone(),
        }
    }
}

/// The `check_many` answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CheckManyOutput {
    /// One row per domain, in the order given.
    pub rows: Vec<ListRow>,
    /// The scan summary of these domains (the same document as `scan --summary`).
    pub summary: serde_json::Value,
}

/// The report document's schema as the output schema of `check_mta_sts`.
fn report_output_schema() -> Arc<JsonObject> {
    Arc::new(report_schema().as_object().cloned().unwrap_or_default())
}

/// The MCP server: the tools over a [`CheckRunner`] (whose slots it shares with REST clients).
#[derive(Clone)]
pub struct McpServer {
    runner: CheckRunner,
    tool_router: ToolRouter<McpServer>,
}

#[tool_router]
impl McpServer {
    pub fn new(runner: CheckRunner) -> McpServer {
        McpServer {
            runner,
            tool_router: Self::tool_router(),
        }
    }

    /// Checks one domain.
    #[tool(
        description = "Check a domain's MTA-STS policy (RFC 8461) and TLS-RPT record (RFC 8460). Returns the full report as structured content and a short plain-language summary (verdict, what is wrong, what to do first) to quote.",
        output_schema = report_output_schema(),
        annotations(title = "Check MTA-STS", read_only_hint = true, open_world_hint = true)
    )]
    async fn check_mta_sts(
        &self,
        Parameters(params): Parameters<CheckMtaStsParams>,
    ) -> Result<CallToolResult, String> {
        mx_probe_allowed(params.probe_mx, self.runner.probes_mx())?;
        let input = params.domain;
        let domain = crate::domain::normalize_domain(&input)
            .map_err(|error| format!("{input:?} is not a domain name: {error}"))?;
        let report = self
            .runner
            .check(domain, input, params.probe_mx)
            .await
            .map_err(|refused| refused.to_string())?;
        let document = serde_json::to_value(&report)
            .map_err(|error| format!("cannot serialise the report: {error}"))?;
        let mut result = CallToolResult::structured(document);
        result
            .content
            .insert(0, ContentBlock::text(plain_summary(&report)));
        Ok(result)
    }

    /// Explains an issue code.
    #[tool(
        description = "Explain an issue code from a check_mta_sts report (issues[].code): its severity, what it means, the RFC section and how to fix it.",
        annotations(
            title = "Explain an issue code",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn explain_issue(
        &self,
        Parameters(params): Parameters<ExplainIssueParams>,
    ) -> Result<Json<IssueExplanation>, String> {
        let name = params.code.trim();
        match IssueCode::from_name(name) {
            Some(code) => Ok(Json(IssueExplanation::of(code))),
            None => {
                let known: Vec<&str> = IssueCode::ALL.iter().map(|code| code.as_str()).collect();
                Err(format!(
                    "unknown issue code {name:?}; the codes are: {}",
                    known.join(", ")
                ))
            }
        }
    }

    /// Checks a list of domains.
    #[tool(
        description = "Check up to 100 domains at once: one row per domain (outcome, mode, issue codes) plus summary statistics (MTA-STS and TLS-RPT adoption, modes, most common issues).",
        annotations(
            title = "Check many domains",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn check_many(
        &self,
        Parameters(params): Parameters<CheckManyParams>,
    ) -> Result<Json<CheckManyOutput>, String> {
        let domains = params.domains;
        if domains.is_empty() {
            return Err("give at least one domain".into());
        }
        if domains.len() > MAX_DOMAINS_PER_LIST {
            return Err(format!(
                "at most {MAX_DOMAINS_PER_LIST} domains per call, got {}: split the list",
                domains.len()
            ));
        }
        let invalid: Vec<String> = domains
            .iter()
            .filter_map(|domain| {
                crate::domain::normalize_domain(domain)
                    .err()
                    .map(|error| format!("{domain:?} ({error})"))
            })
            .collect();
        if !invalid.is_empty() {
            return Err(format!("not domain names: {}", invalid.join(", ")));
        }
        let result = self.runner.check_list(domains).await?;
        let summary = serde_json::to_value(result.statistics.summary(&result.run))
            .map_err(|error| format!("cannot serialise the summary: {error}"))?;
        Ok(Json(CheckManyOutput {
            rows: result.reports.iter().map(ListRow::of).collect(),
            summary,
        }))
    }
}

/// The catalogue as one JSON document: every code's explanation, in the catalogue's order.
pub fn issue_catalogue() -> Vec<IssueExplanation> {
    IssueCode::ALL
        .iter()
        .copied()
        .map(IssueExplanation::of)
        .collect()
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new(
            "mta-sts-scan",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let catalogue = Resource::new(ISSUES_URI, "issue-codes")
            .with_title("MTA-STS and TLS-RPT issue codes")
            .with_description(
                "Every issue code a report can carry: severity, meaning, RFC section, fix.",
            )
            .with_mime_type("application/json");
        Ok(ListResourcesResult::with_all_items(vec![catalogue]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri != ISSUES_URI {
            return Err(ErrorData::resource_not_found(
                format!("no resource {}; there is {ISSUES_URI}", request.uri),
                None,
            ));
        }
        let text = serde_json::to_string_pretty(&issue_catalogue())
            .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
        let contents = ResourceContents::text(text, ISSUES_URI).with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

/// Serves MCP over stdin/stdout until the client closes stdin.
pub async fn serve_stdio(runner: CheckRunner) -> Result<(), String> {
    let running = McpServer::new(runner)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|error| format!("MCP session failed to start: {error}"))?;
    running
        .waiting()
        .await
        .map_err(|error| format!("MCP session ended with an error: {error}"))?;
    Ok(())
}

/// The `/mcp` endpoint of `serve`: streamable HTTP, stateless (every request stands alone, so
/// any replica behind a load balancer can answer), JSON answers. `allowed_hosts` extends the
/// loopback names the `Host` header may carry (protection against DNS rebinding); `stop` ends
/// open streams at shutdown.
pub fn http_service(
    runner: CheckRunner,
    allowed_hosts: &[String],
    stop: CancellationToken,
) -> StreamableHttpService<McpServer, LocalSessionManager> {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_cancellation_token(stop);
    config.allowed_hosts.extend(allowed_hosts.iter().cloned());
    StreamableHttpService::new(
        move || Ok(McpServer::new(runner.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_explained() {
        let catalogue = issue_catalogue();
        assert_eq!(catalogue.len(), IssueCode::ALL.len());
        for explanation in &catalogue {
            assert!(!explanation.meaning.is_empty());
            let code = IssueCode::from_name(&explanation.code).unwrap();
            if code != IssueCode::DomainTimeout {
                assert!(explanation.rfc_section.is_some(), "{}", explanation.code);
            }
        }
        let uncovered = IssueExplanation::of(IssueCode::MxNotCovered);
        assert_eq!(uncovered.rfc_section.as_deref(), Some("RFC 8461 §4.1"));
        assert!(uncovered.severity_depends_on.is_some());
    }
}
