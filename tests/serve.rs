//! `serve` as an HTTP client sees it: the real server on a loopback port, a real HTTP client, and
//! lookups through the in-process test internet. Status codes, JSON bodies, the check-slot limit,
//! the request deadline, graceful shutdown, API keys, per-client rates, the OpenAPI document and
//! the access log.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mta_sts_scan::lab::{LabOptions, TestInternet};
use mta_sts_scan::serve::auth::ApiKeys;
use mta_sts_scan::serve::client_limit::ClientRate;
use mta_sts_scan::serve::{AccessLog, AccessLogEntry, ServeSettings, serve};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct RunningServer {
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), String>>,
}

impl RunningServer {
    async fn start(lab: &TestInternet, settings: ServeSettings) -> RunningServer {
        RunningServer::start_with(lab, lab.scanner_config(), settings).await
    }

    async fn start_with(
        _lab: &TestInternet,
        config: mta_sts_scan::config::ScannerConfig,
        settings: ServeSettings,
    ) -> RunningServer {
        let validator = Arc::new(config.build_validator().unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, validator, settings, async move {
            let _ = stopped.await;
        }));
        RunningServer {
            base_url,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }

    fn check_url(&self, domain: &str) -> String {
        self.url(&format!("/v1/security/mta-sts?domain={domain}"))
    }
}

struct Answer {
    status: StatusCode,
    content_type: String,
    headers: reqwest::header::HeaderMap,
    json: Value,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.unwrap();
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|error| panic!("{status}: body is not JSON ({error}): {body:?}"));
    Answer {
        status,
        content_type,
        headers,
        json,
    }
}

async fn get(url: String) -> Answer {
    send(client().get(url)).await
}

/// Waits until the test internet has answered more DNS queries than `before`: a check started.
async fn wait_for_dns_queries_above(lab: &TestInternet, before: u64) {
    let waited = Instant::now();
    while lab.dns_queries.load(Ordering::SeqCst) <= before {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the check never reached the DNS server"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_answers_with_the_check_json_body() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let server = RunningServer::start(&lab, ServeSettings::default()).await;

    let answer = get(server.check_url("valid-enforce-1.test")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.content_type, "application/json");
    let report = &answer.json;
    assert_eq!(report["domain"], "valid-enforce-1.test");
    assert_eq!(report["outcome"], "valid");
    assert_eq!(report["has_mta_sts"], true);
    assert_eq!(report["mode"], "enforce");
    assert_eq!(report["dns_record"]["version"], "STSv1");
    assert_eq!(report["policy"]["mode"], "enforce");
    assert_eq!(
        report["policy_url"],
        "https://mta-sts.valid-enforce-1.test/.well-known/mta-sts.txt"
    );
    for field in [
        "dns_record",
        "policy",
        "mode",
        "policy_url",
        "tls_rpt",
        "issues",
        "recommendations",
        "mx_hosts",
        "severity",
        "scanned_at",
    ] {
        assert!(report.get(field).is_some(), "missing {field}: {report}");
    }
    assert!(report["issues"].is_array());
    assert!(report["recommendations"].is_array());

    // Percent-encoding is decoded and the name normalised like `check` does.
    let answer = get(server.check_url("VALID-ENFORCE-1.test%2E")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["domain"], "valid-enforce-1.test");
    assert_eq!(answer.json["input"], "VALID-ENFORCE-1.test.");

    // A broken policy is still a 200: the report says what is wrong.
    let answer = get(server.check_url("record-multiple-1.test")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["outcome"], "invalid");
    assert_eq!(answer.json["issues"][0]["code"], "sts_record_multiple");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_invalid_domain_is_400_and_looks_nothing_up() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let server = RunningServer::start(&lab, ServeSettings::default()).await;
    let queries_before = lab.dns_queries.load(Ordering::SeqCst);

    let answer = get(server.check_url("not%20a%20domain")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(answer.json["domain"], "not a domain");
    assert!(
        answer.json["error"]
            .as_str()
            .is_some_and(|error| error.contains("not a domain name")),
        "{}",
        answer.json
    );

    let answer = get(server.url("/v1/security/mta-sts")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json["domain"], Value::Null);
    assert!(
        answer.json["error"]
            .as_str()
            .is_some_and(|error| error.contains("domain")),
        "{}",
        answer.json
    );

    for query in [
        "?domain=",
        "?domain=a.test&domain=b.test",
        "?name=a.test",
        "?domain=*.example.com",
    ] {
        let answer = get(server.url(&format!("/v1/security/mta-sts{query}"))).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(answer.json["error"].is_string(), "{query}: {}", answer.json);
    }
    assert_eq!(
        lab.dns_queries.load(Ordering::SeqCst),
        queries_before,
        "a rejected request must not reach DNS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_unknown_paths_and_other_methods() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let server = RunningServer::start(&lab, ServeSettings::default()).await;

    let answer = get(server.url("/healthz")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(answer.json, serde_json::json!({"status": "ok"}));

    let answer = get(server.url("/v1/security/nope?domain=example.com")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(answer.json["path"], "/v1/security/nope");

    for path in [
        "/v1/security/mta-sts?domain=valid-enforce-1.test",
        "/healthz",
    ] {
        let answer = send(client().post(server.url(path)).body("domain=example.com")).await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(answer.headers["allow"], "GET");
        assert_eq!(answer.json["method"], "POST");
    }
}

/// One check slot, a 500 ms deadline, and the tarpit (whose TLS handshake the lab's 2 s connect
/// timeout ends): the tarpit request gets 504 at its deadline, but its check keeps the slot until
/// the lookup ends, so a request arriving meanwhile waits its own 500 ms and gets 503. Once the
/// tarpit check has ended, the slot is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_answers_503_and_an_overdue_check_504() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let settings = ServeSettings {
        max_concurrent: 1,
        request_timeout: Duration::from_millis(500),
        ..ServeSettings::default()
    };
    let server = RunningServer::start(&lab, settings).await;

    let queries_before = lab.dns_queries.load(Ordering::SeqCst);
    let started = Instant::now();
    let tarpit = tokio::spawn(get(server.check_url("tarpit-1.test")));
    // The tarpit check holds the only slot once it is looking things up.
    wait_for_dns_queries_above(&lab, queries_before).await;

    let waiting = get(server.check_url("valid-enforce-1.test")).await;
    assert_eq!(
        waiting.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        waiting.json
    );
    assert_eq!(waiting.content_type, "application/json");
    assert_eq!(waiting.json["domain"], "valid-enforce-1.test");
    assert!(waiting.json["error"].is_string());
    assert_eq!(waiting.headers["retry-after"], "1");

    let overdue = tarpit.await.unwrap();
    assert_eq!(
        overdue.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        overdue.json
    );
    assert_eq!(overdue.content_type, "application/json");
    assert_eq!(overdue.json["domain"], "tarpit-1.test");
    let overdue_after = started.elapsed();
    assert!(
        overdue_after >= Duration::from_millis(500) && overdue_after < Duration::from_millis(1900),
        "504 after {overdue_after:?}"
    );

    // The slot frees up when the tarpit check reaches its own bound (one request timeout),
    // before its lookups would have ended (the lab's 2 s connect timeout).
    let answered = loop {
        let answer = get(server.check_url("valid-enforce-1.test")).await;
        if answer.status == StatusCode::OK {
            break started.elapsed();
        }
        assert!(
            matches!(
                answer.status,
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
            ),
            "{} {}",
            answer.status,
            answer.json
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the slot never freed up"
        );
    };
    assert!(
        answered >= Duration::from_millis(500),
        "the tarpit check gave its slot back after {answered:?}, before its bound"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_the_requests_in_flight_then_stops() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let settings = ServeSettings {
        max_concurrent: 4,
        request_timeout: Duration::from_millis(800),
        ..ServeSettings::default()
    };
    let mut server = RunningServer::start(&lab, settings).await;
    assert_eq!(get(server.url("/healthz")).await.status, StatusCode::OK);

    let queries_before = lab.dns_queries.load(Ordering::SeqCst);
    let in_flight = tokio::spawn(get(server.check_url("tarpit-1.test")));
    wait_for_dns_queries_above(&lab, queries_before).await;
    if let Some(stop) = server.stop.take() {
        stop.send(()).unwrap();
    }

    let answer = in_flight.await.unwrap();
    assert_eq!(
        answer.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        answer.json
    );
    let stopped = tokio::time::timeout(Duration::from_secs(10), &mut server.task)
        .await
        .expect("the server did not stop")
        .unwrap();
    assert_eq!(stopped, Ok(()));
    let refused = client().get(server.url("/healthz")).send().await;
    assert!(refused.is_err(), "still answering after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_settings_are_refused() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let validator = Arc::new(lab.scanner_config().build_validator().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let settings = ServeSettings {
        max_concurrent: 0,
        ..ServeSettings::default()
    };
    let result = serve(
        listener,
        validator.clone(),
        settings,
        std::future::pending(),
    )
    .await;
    assert!(result.is_err());
    for request_timeout in [Duration::ZERO, Duration::from_secs(365 * 24 * 3600)] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let settings = ServeSettings {
            request_timeout,
            ..ServeSettings::default()
        };
        let result = serve(
            listener,
            validator.clone(),
            settings,
            std::future::pending(),
        )
        .await;
        assert!(result.is_err(), "{request_timeout:?}");
    }
}

const KEY: &str = "serve-test-key-0123456789";

fn with_keys() -> ServeSettings {
    ServeSettings {
        api_keys: Some(ApiKeys::new([KEY, "second-key-abcdefghijklmnop"]).unwrap()),
        ..ServeSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_guard_the_api_but_not_health_or_the_document() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let server = RunningServer::start(&lab, with_keys()).await;
    let queries_before = lab.dns_queries.load(Ordering::SeqCst);

    let url = server.check_url("valid-enforce-1.test");
    for request in [
        client().get(&url),
        client().get(&url).bearer_auth("serve-test-key-012345678"),
        client().get(&url).bearer_auth(format!("{KEY}x")),
        client()
            .get(&url)
            .header("authorization", format!("Basic {KEY}")),
        client().get(&url).header("x-api-key", KEY),
    ] {
        let answer = send(request).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.json);
        assert_eq!(answer.content_type, "application/json");
        assert!(answer.json["error"].is_string(), "{}", answer.json);
        let challenge = answer.headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
    assert_eq!(
        lab.dns_queries.load(Ordering::SeqCst),
        queries_before,
        "an unauthenticated request must not reach DNS"
    );

    let answer = send(client().get(&url).bearer_auth(KEY)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["outcome"], "valid");
    let answer = send(
        client()
            .get(&url)
            .header("authorization", "bearer second-key-abcdefghijklmnop"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);

    assert_eq!(get(server.url("/healthz")).await.status, StatusCode::OK);
    assert_eq!(
        get(server.url("/openapi.json")).await.status,
        StatusCode::OK
    );
    let answer = send(client().post(server.url("/mcp")).body("{}")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let settings = ServeSettings {
        client_rate: Some(ClientRate::parse("2/min").unwrap()),
        ..ServeSettings::default()
    };
    let server = RunningServer::start(&lab, settings).await;
    for _ in 0..2 {
        let answer = get(server.check_url("valid-enforce-1.test")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    }
    let queries_before = lab.dns_queries.load(Ordering::SeqCst);
    let answer = get(server.check_url("valid-enforce-1.test")).await;
    assert_eq!(
        answer.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        answer.json
    );
    assert_eq!(answer.content_type, "application/json");
    assert!(answer.json["error"].is_string());
    let retry_after: u64 = answer.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=30).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    // Every path counts (the document too), except the health probe.
    assert_eq!(
        get(server.url("/openapi.json")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(get(server.url("/healthz")).await.status, StatusCode::OK);
    assert_eq!(lab.dns_queries.load(Ordering::SeqCst), queries_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_mx_needs_a_server_started_with_probe_mx() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let server = RunningServer::start(&lab, ServeSettings::default()).await;
    let answer =
        get(server.url("/v1/security/mta-sts?domain=valid-enforce-1.test&probe_mx=true")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.json);
    assert!(
        answer.json["error"]
            .as_str()
            .is_some_and(|e| e.contains("--probe-mx")),
        "{}",
        answer.json
    );
    let answer =
        get(server.url("/v1/security/mta-sts?domain=valid-enforce-1.test&probe_mx=false")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
}

/// A server started with the probe probes only the requests that ask (`?probe_mx=true`), and
/// gives the §7 verdict the scanner gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probing_server_probes_only_when_asked() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let mut config = lab.scanner_config();
    config.mx_probe = Some(lab.mx_probe_settings());
    let server = RunningServer::start_with(&lab, config, ServeSettings::default()).await;
    let plain = get(server.check_url("mx-tls-invalid-1.test")).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.json);
    assert_eq!(plain.json["mx_probed"], false);
    assert_eq!(plain.json["delivery_blocked"], false);
    let probed =
        get(server.url("/v1/security/mta-sts?domain=mx-tls-invalid-1.test&probe_mx=true")).await;
    assert_eq!(probed.status, StatusCode::OK, "{}", probed.json);
    assert_eq!(probed.json["mx_probed"], true);
    assert_eq!(probed.json["delivery_blocked"], true);
    assert_eq!(
        probed.json["mx_tls_failed"][0],
        "expired.mx.test cert_expired"
    );
}

/// The document must be OpenAPI 3.1 that a third-party reader (oas3) accepts, and describe what
/// the server really answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_valid_3_1_and_matches_the_api() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let server = RunningServer::start(&lab, with_keys()).await;
    let response = client()
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();

    let spec = oas3::from_json(&text).expect("oas3 reads the document");
    let version = spec
        .validate_version()
        .expect("a supported OpenAPI version");
    assert_eq!((version.major, version.minor), (3, 1));
    let operations: Vec<(String, String)> = spec
        .operations()
        .map(|(path, method, _)| (path, method.to_string()))
        .collect();
    for expected in ["/v1/security/mta-sts", "/healthz", "/openapi.json"] {
        assert!(
            operations.contains(&(expected.to_owned(), "GET".to_owned())),
            "{expected} missing from {operations:?}"
        );
    }

    let document: Value = serde_json::from_str(&text).unwrap();
    let check = &document["paths"]["/v1/security/mta-sts"]["get"];
    let parameters = check["parameters"].as_array().unwrap();
    let domain = parameters.iter().find(|p| p["name"] == "domain").unwrap();
    assert_eq!(domain["in"], "query");
    assert_eq!(domain["required"], true);
    assert!(parameters.iter().any(|p| p["name"] == "probe_mx"));
    let statuses: Vec<&String> = check["responses"].as_object().unwrap().keys().collect();
    assert_eq!(statuses, ["200", "400", "401", "429", "503", "504"]);

    // Bearer auth everywhere, but not on the health probe and the document itself.
    assert_eq!(
        document["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    assert_eq!(document["security"][0]["api_key"], serde_json::json!([]));
    assert_eq!(
        document["paths"]["/healthz"]["get"]["security"],
        serde_json::json!([{}])
    );

    // The report schema names exactly the fields a real answer has.
    let schema = &document["components"]["schemas"]["DomainReport"];
    let mut declared: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    let report = send(
        client()
            .get(server.check_url("mx-uncovered-1.test"))
            .bearer_auth(KEY),
    )
    .await;
    let mut answered: Vec<&String> = report.json.as_object().unwrap().keys().collect();
    declared.sort();
    answered.sort();
    assert_eq!(declared, answered);
    assert_eq!(
        schema["properties"]["outcome"]["enum"],
        serde_json::json!(["valid", "invalid", "absent", "error", "input_error"])
    );
    assert_eq!(
        check["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/DomainReport"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_logged_without_its_key_or_query() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let entries: Arc<Mutex<Vec<AccessLogEntry>>> = Arc::default();
    let log = entries.clone();
    let settings = ServeSettings {
        access_log: Some(AccessLog::new(move |entry| {
            log.lock().unwrap().push(entry.clone())
        })),
        ..with_keys()
    };
    let server = RunningServer::start(&lab, settings).await;
    send(
        client()
            .get(server.check_url("valid-enforce-1.test"))
            .bearer_auth(KEY),
    )
    .await;
    send(client().get(server.check_url("valid-enforce-1.test"))).await;
    get(server.url("/healthz")).await;
    send(client().post(server.url("/healthz"))).await;

    let entries = entries.lock().unwrap().clone();
    let seen: Vec<(&str, &str, u16)> = entries
        .iter()
        .map(|e| (e.method.as_str(), e.path.as_str(), e.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", "/v1/security/mta-sts", 200),
            ("GET", "/v1/security/mta-sts", 401),
            ("GET", "/healthz", 200),
            ("POST", "/healthz", 405),
        ]
    );
    for entry in &entries {
        assert_eq!(entry.client, Some("127.0.0.1".parse().unwrap()));
        assert!(entry.duration_ms < 20_000);
    }
    let logged = serde_json::to_string(&entries).unwrap();
    assert!(
        !logged.contains(KEY) && !logged.contains("domain="),
        "{logged}"
    );
}

/// Behind a proxy every request comes from the proxy: with `client_address_header` each client
/// the proxy names has its own allowance, and the log shows that client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proxy_clients_are_told_apart_by_the_forwarded_address() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let entries: Arc<Mutex<Vec<AccessLogEntry>>> = Arc::default();
    let log = entries.clone();
    let settings = ServeSettings {
        client_rate: Some(ClientRate::parse("1/min").unwrap()),
        client_address_header: Some(reqwest::header::HeaderName::from_static("x-forwarded-for")),
        access_log: Some(AccessLog::new(move |entry| {
            log.lock().unwrap().push(entry.clone())
        })),
        ..ServeSettings::default()
    };
    let server = RunningServer::start(&lab, settings).await;
    let from = |address: &str| {
        client()
            .get(server.url("/openapi.json"))
            .header("x-forwarded-for", format!("203.0.113.250, {address}"))
    };
    assert_eq!(
        from("192.0.2.1").send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        from("192.0.2.1").send().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        from("192.0.2.2").send().await.unwrap().status(),
        StatusCode::OK
    );
    let clients: Vec<Option<std::net::IpAddr>> =
        entries.lock().unwrap().iter().map(|e| e.client).collect();
    let expected: Vec<Option<std::net::IpAddr>> = ["192.0.2.1", "192.0.2.1", "192.0.2.2"]
        .iter()
        .map(|a| Some(a.parse().unwrap()))
        .collect();
    assert_eq!(clients, expected);
}
