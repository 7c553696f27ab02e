//! End to end through the test internet's SMTP servers (spec §7, issue 10): every MX behaviour
//! gives its per-MX status and facts through the real probe (host resolved by the lab DNS, TLS
//! judged against the lab CA); the probe cache opens one connection per MX host; the per-address
//! limit holds on the server side; hostile servers end in a status, never a panic; no mail
//! command is ever sent.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mta_sts_scan::lab::smtp::{LabSmtp, MxBehaviour, REFUSING_ADDRESS};
use mta_sts_scan::lab::{LabOptions, TestInternet};
use mta_sts_scan::net::Dns;
use mta_sts_scan::net::address::AddressPolicy;
use mta_sts_scan::net::dns::HickoryDns;
use mta_sts_scan::net::smtp::{MxProbe, MxProber, MxStatus, SmtpProbeConfig, SmtpProber};
use mta_sts_scan::scan::mx_cache::{MxProbeCache, Politeness};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const YEAR_2099_MS: i64 = 4_070_908_800_000;
const YEAR_2098_MS: i64 = 4_039_372_800_000;
const YEAR_2021_MS: i64 = 1_609_459_200_000;

struct Lab {
    internet: TestInternet,
    smtp: LabSmtp,
    dns: HickoryDns,
}

async fn lab() -> Lab {
    let internet = TestInternet::start(LabOptions::default())
        .await
        .expect("test internet starts");
    let smtp = LabSmtp::start(internet.ca())
        .await
        .expect("SMTP servers start");
    let dns = HickoryDns::new(&internet.scanner_config().dns).expect("resolver");
    Lab {
        internet,
        smtp,
        dns,
    }
}

impl Lab {
    fn config(&self, smtp_timeout: Duration) -> SmtpProbeConfig {
        let ca = self.internet.ca();
        let mut config = SmtpProbeConfig::new(
            "probe.lab.test",
            Arc::new(ca.root_store()),
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        );
        config.port = self.smtp.port();
        config.connect_timeout = Duration::from_secs(2);
        config.smtp_timeout = smtp_timeout;
        config.address_policy = AddressPolicy {
            allow_private: false,
            allow_loopback: true,
        };
        config
    }

    fn prober(&self, smtp_timeout: Duration) -> SmtpProber {
        SmtpProber::new(self.config(smtp_timeout)).expect("prober")
    }

    async fn resolve(&self, host: &str) -> Vec<IpAddr> {
        self.dns
            .addresses(host)
            .await
            .expect("lab DNS answers")
            .addresses
    }
}

/// What each behaviour must show beyond its status.
fn check_facts(behaviour: MxBehaviour, probe: &MxProbe) -> Result<(), String> {
    let host = behaviour.host();
    let error = probe.error.as_deref().unwrap_or("");
    let banner = probe.banner.as_deref().unwrap_or("");
    let cert = probe.cert.as_ref();
    let san: Vec<&str> = cert.map_or(Vec::new(), |c| c.san.iter().map(String::as_str).collect());
    let tls_done = probe
        .tls_version
        .as_deref()
        .is_some_and(|v| v.starts_with("TLSv1_"))
        && probe.cipher.is_some()
        && cert.is_some_and(|c| c.sha256.len() == 64);
    let checks: Vec<(bool, &str)> = match behaviour {
        MxBehaviour::Valid => vec![
            (
                banner == format!("220 {host} ESMTP mta-sts-scan lab"),
                "banner",
            ),
            (probe.starttls && tls_done, "TLS facts"),
            (san == [host.as_str()], "SAN"),
            (
                cert.is_some_and(|c| c.issuer.contains("test internet root")),
                "issuer",
            ),
            (cert.is_some_and(|c| c.subject.contains(&host)), "subject"),
            (
                cert.is_some_and(|c| c.not_after_ms == YEAR_2099_MS),
                "not_after",
            ),
            (probe.error.is_none(), "no error"),
        ],
        MxBehaviour::Wildcard => vec![(tls_done && san == ["*.mx.test"], "wildcard SAN")],
        MxBehaviour::Expiring => vec![
            (tls_done && probe.error.is_none(), "valid TLS"),
            (
                probe.cert_expiring_soon(mta_sts_scan::report::now_millis()),
                "expires within 14 days",
            ),
        ],
        MxBehaviour::SplitReplies => vec![
            (
                banner == format!("220 {host} ESMTP mta-sts-scan lab"),
                "multi-line banner",
            ),
            (tls_done, "TLS facts"),
            (
                cert.is_some_and(|c| c.issuer.contains("intermediate")),
                "chain via intermediate",
            ),
        ],
        MxBehaviour::NoStarttls => vec![
            (!probe.starttls && probe.tls_version.is_none(), "no TLS"),
            (error.contains("STARTTLS not offered"), "error"),
        ],
        MxBehaviour::Expired => vec![
            (
                tls_done && cert.is_some_and(|c| c.not_after_ms == YEAR_2021_MS),
                "not_after",
            ),
            (
                error == "certificate expired at 2021-01-01T00:00:00Z",
                "error",
            ),
        ],
        MxBehaviour::NotYetValid => vec![
            (
                tls_done && cert.is_some_and(|c| c.not_before_ms == YEAR_2098_MS),
                "not_before",
            ),
            (
                error == "certificate not valid before 2098-01-01T00:00:00Z",
                "error",
            ),
        ],
        MxBehaviour::WrongName => vec![
            (tls_done && san == [format!("not-{host}").as_str()], "SAN"),
            (
                error.contains("no DNS name of the certificate matches"),
                "error",
            ),
        ],
        MxBehaviour::SelfSigned => vec![
            (tls_done && san == [host.as_str()], "certificate recorded"),
            (error == "self-signed certificate", "error"),
        ],
        MxBehaviour::UntrustedCa => vec![
            (tls_done && san == [host.as_str()], "certificate recorded"),
            (
                error.ends_with("missing intermediate): CN=untrusted root"),
                "error",
            ),
        ],
        MxBehaviour::MissingIntermediate => vec![
            (tls_done && san == [host.as_str()], "certificate recorded"),
            (
                error.ends_with("intermediate): CN=mta-sts-scan test internet intermediate"),
                "error",
            ),
        ],
        MxBehaviour::StarttlsRefused => vec![
            (
                probe.starttls && probe.tls_version.is_none(),
                "offered, not negotiated",
            ),
            (error.contains("STARTTLS refused: 454"), "error"),
        ],
        MxBehaviour::Greeting421 => vec![
            (banner.starts_with("421 4.3.2"), "banner"),
            (error.starts_with("greeting 421"), "error"),
        ],
        MxBehaviour::Greeting554 => vec![
            (banner.starts_with("554 5.3.2"), "banner"),
            (error.starts_with("greeting 554"), "error"),
        ],
        MxBehaviour::Tarpit => vec![
            (probe.banner.is_none(), "no banner"),
            (
                error.contains("timed out") && error.contains("the banner"),
                "error",
            ),
        ],
        MxBehaviour::CloseAfterEhlo => vec![
            (banner.starts_with("220 "), "banner"),
            (error == "EHLO: connection closed", "error"),
        ],
        MxBehaviour::InjectAfterStarttls => vec![
            (probe.starttls && probe.tls_version.is_none(), "no TLS"),
            // The server writes the 220 and the injected lines with one send on loopback, so
            // they arrive together and sit in the read buffer when the 220 is parsed.
            (
                error == "30 bytes of plaintext after the 220 reply to STARTTLS",
                "error",
            ),
        ],
        MxBehaviour::GarbageAfterStarttls => vec![
            (probe.starttls && probe.tls_version.is_none(), "no TLS"),
            (error.starts_with("TLS handshake"), "error"),
        ],
        MxBehaviour::Held => Vec::new(),
    };
    let failed: Vec<&str> = checks
        .iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, what)| *what)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{failed:?}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_behaviour_gives_its_status_and_facts_end_to_end() {
    let lab = lab().await;
    let smtp_timeout = Duration::from_secs(3);
    let prober = lab.prober(smtp_timeout);
    let behaviours: Vec<MxBehaviour> = MxBehaviour::ALL
        .into_iter()
        .filter(|b| *b != MxBehaviour::Held)
        .collect();
    let probes = behaviours.iter().map(|behaviour| {
        let (lab, prober) = (&lab, &prober);
        async move {
            let host = behaviour.host();
            let addresses = lab.resolve(&host).await;
            assert_eq!(addresses, [IpAddr::V4(behaviour.address())], "{host}");
            (*behaviour, prober.probe(&host, &addresses).await)
        }
    });
    let mut failures = Vec::new();
    for (behaviour, probe) in futures::future::join_all(probes).await {
        let counts = lab.smtp.counts(behaviour);
        if probe.status != behaviour.expected_status() {
            failures.push(format!(
                "{}: status {} (expected {}), error {:?}",
                behaviour.slug(),
                probe.status,
                behaviour.expected_status(),
                probe.error
            ));
        } else if let Err(failed) = check_facts(behaviour, &probe) {
            failures.push(format!("{}: {failed} in {probe:?}", behaviour.slug()));
        }
        if probe.address != Some(IpAddr::V4(behaviour.address())) || counts.total != 1 {
            failures.push(format!(
                "{}: address {:?}, {} connections",
                behaviour.slug(),
                probe.address,
                counts.total
            ));
        }
        if counts.mail_commands != 0 {
            failures.push(format!("{}: a mail command was sent", behaviour.slug()));
        }
        if probe.duration > smtp_timeout + Duration::from_secs(1) {
            failures.push(format!("{}: took {:?}", behaviour.slug(), probe.duration));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every status of spec §7 that a server can cause is produced (forbidden_address: below).
    for status in MxStatus::ALL {
        if status != MxStatus::ForbiddenAddress {
            assert!(
                behaviours.iter().any(|b| b.expected_status() == status),
                "{status} not covered"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_policy_missing_addresses_and_refused_connections() {
    let lab = lab().await;
    let valid = IpAddr::V4(MxBehaviour::Valid.address());
    let host = MxBehaviour::Valid.host();

    let mut strict = lab.config(Duration::from_secs(3));
    strict.address_policy = AddressPolicy::default();
    let forbidden = SmtpProber::new(strict)
        .unwrap()
        .probe(&host, &[valid])
        .await;
    assert_eq!(forbidden.status, MxStatus::ForbiddenAddress);
    assert_eq!(lab.smtp.counts(MxBehaviour::Valid).total, 0);

    let prober = lab.prober(Duration::from_secs(3));
    let none = prober.probe(&host, &[]).await;
    assert_eq!(
        (none.status, none.error.as_deref()),
        (MxStatus::Unreachable, Some("no address"))
    );

    let refusing = IpAddr::V4(REFUSING_ADDRESS);
    let refused = prober.probe(&host, &[refusing]).await;
    assert_eq!(refused.status, MxStatus::Unreachable);
    assert!(
        refused
            .error
            .as_deref()
            .is_some_and(|e| e.contains("connect")),
        "{refused:?}"
    );

    // The next address is tried after a refused connection; a forbidden one is skipped.
    let private = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 25));
    let second = prober.probe(&host, &[private, refusing, valid]).await;
    assert_eq!(second.status, MxStatus::Valid, "{second:?}");
    assert_eq!(second.address, Some(valid));
    assert_eq!(lab.smtp.counts(MxBehaviour::Valid).total, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_domains_sharing_an_mx_host_make_one_connection() {
    let lab = lab().await;
    let cache = MxProbeCache::new(lab.prober(Duration::from_secs(5)));
    let host = MxBehaviour::SplitReplies.host();
    let lookups = (0..25).map(|_| {
        let (cache, lab, host) = (&cache, &lab, host.as_str());
        async move {
            cache
                .probe_resolving(host, || async { Ok(lab.resolve(host).await) })
                .await
        }
    });
    let results = futures::future::join_all(lookups).await;
    assert!(
        results.iter().all(|r| r.status == MxStatus::Valid),
        "{:?}",
        results[0]
    );
    assert!(results.iter().all(|r| Arc::ptr_eq(r, &results[0])));
    assert_eq!(lab.smtp.counts(MxBehaviour::SplitReplies).total, 1);
    assert_eq!(cache.uses(&host), 25);
    // The memory estimate of the module documentation: about 1 KiB for a host with a certificate.
    let bytes = cache.approximate_bytes();
    assert!((400..2048).contains(&bytes), "{bytes} bytes for one host");
    // A later lookup is served from the cache too.
    cache.probe(&host.to_uppercase(), &[]).await;
    assert_eq!(lab.smtp.counts(MxBehaviour::SplitReplies).total, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_smtp_per_ip_connections_to_one_address() {
    let lab = lab().await;
    let held = MxBehaviour::Held;
    // Six MX hosts on one address: the cache does not merge them, the address limit must.
    let hosts: Vec<String> = (0..6).map(|i| format!("h{i}.{}", held.host())).collect();
    let polite = MxProbeCache::new(
        lab.prober(Duration::from_secs(20))
            .with_gate(Arc::new(Politeness::new(2, None))),
    );
    let probes = futures::future::join_all(hosts.iter().map(|host| {
        let (polite, lab) = (&polite, &lab);
        async move {
            polite
                .probe_resolving(host, || async { Ok(lab.resolve(host).await) })
                .await
        }
    }));
    let release = async {
        // Two connections are held open; only then may they all go on.
        lab.smtp.wait_for(held, |c| c.active >= 2).await;
        lab.smtp.release_held(hosts.len());
    };
    let (results, ()) = within_a_minute(async { tokio::join!(probes, release) }).await;
    let counts = lab.smtp.counts(held);
    assert_eq!((counts.total, counts.max_active), (6, 2), "{counts:?}");
    for result in &results {
        assert_eq!(result.status, MxStatus::Unreachable);
        assert!(
            result
                .banner
                .as_deref()
                .is_some_and(|b| b.starts_with("421")),
            "{result:?}"
        );
    }

    // The same load without the limit: the server sees all six at once, so the assertion above
    // measures the limit, not the timing.
    let impolite = lab.prober(Duration::from_secs(20));
    let address = [IpAddr::V4(held.address())];
    let probes = futures::future::join_all(hosts.iter().map(|host| impolite.probe(host, &address)));
    let release = async {
        lab.smtp.wait_for(held, |c| c.active >= 6).await;
        lab.smtp.release_held(hosts.len());
    };
    let (results, ()) = within_a_minute(async { tokio::join!(probes, release) }).await;
    assert!(results.iter().all(|r| r.status == MxStatus::Unreachable));
    let counts = lab.smtp.counts(held);
    assert_eq!((counts.total, counts.max_active), (12, 6), "{counts:?}");
}

/// Fails the test instead of hanging when an awaited event never comes.
async fn within_a_minute<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .expect("finished within a minute")
}

/// A one-connection server on 127.0.0.1 that writes `script` (after reading `reads` lines from
/// the client), then holds the connection until the client closes.
async fn scripted_server(script: Vec<Vec<u8>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut buffer = [0u8; 1024];
        for (i, chunk) in script.iter().enumerate() {
            if i > 0 && stream.read(&mut buffer).await.unwrap_or(0) == 0 {
                return;
            }
            if stream.write_all(chunk).await.is_err() {
                return;
            }
        }
        while stream.read(&mut buffer).await.unwrap_or(0) > 0 {}
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_servers_end_in_a_status_without_panic() {
    let lab = lab().await;
    let smtp_timeout = Duration::from_secs(2);
    let long_line = {
        let mut line = b"220 ".to_vec();
        line.extend(std::iter::repeat_n(b'x', 1 << 20));
        line
    };
    let endless_reply = b"220-more\r\n".repeat(10_000);
    let ehlo_garbage = vec![
        b"220 hi\r\n".to_vec(),
        vec![0xff, 0x00, 0x16, 0x03, b'\r', b'\n'],
    ];
    let tls_alert = vec![
        b"220 hi\r\n".to_vec(),
        b"250-hi\r\n250 STARTTLS\r\n".to_vec(),
        b"220 go\r\n".to_vec(),
        vec![0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46],
    ];
    for (name, script, expected) in [
        (
            "binary banner",
            vec![vec![0u8, 159, 146, 150, b'\n']],
            MxStatus::Unreachable,
        ),
        ("1 MiB banner line", vec![long_line], MxStatus::Unreachable),
        ("endless reply", vec![endless_reply], MxStatus::Unreachable),
        ("garbage EHLO reply", ehlo_garbage, MxStatus::Unreachable),
        ("TLS 1.0 alert", tls_alert, MxStatus::TlsHandshakeFailed),
        (
            "silent after banner",
            vec![b"220 hi\r\n".to_vec()],
            MxStatus::Unreachable,
        ),
    ] {
        let server = scripted_server(script).await;
        let mut config = lab.config(smtp_timeout);
        config.port = server.port();
        let probe = SmtpProber::new(config)
            .unwrap()
            .probe("hostile.example", &[server.ip()])
            .await;
        assert_eq!(probe.status, expected, "{name}: {probe:?}");
        assert!(probe.error.is_some(), "{name}");
        assert!(
            probe.duration < smtp_timeout + Duration::from_secs(1),
            "{name}"
        );
        assert!(
            probe
                .banner
                .as_deref()
                .is_none_or(|b| b.chars().count() <= 200),
            "{name}"
        );
    }
}
