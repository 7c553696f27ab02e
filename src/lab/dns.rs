//! The test internet's authoritative DNS server (hickory-server): answers for every lab domain
//! are generated from its scenario, so the zone costs nothing however many domains a run uses.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::scenarios::{Mx, PolicyHost, Scenario, Txt, scenario_of};

/// The shared provider's names (hosted MTA-STS).
pub const PROVIDER_STS: &str = "_mta-sts.provider.test";
pub const PROVIDER_HOST: &str = "mta-sts.provider.test";
const PROVIDER_RECORD: &str = "v=STSv1; id=provider2026;";

const TTL: u32 = 300;

/// Answers lab queries from the scenario catalogue.
pub struct LabDnsHandler {
    /// Where the lab's HTTPS server listens.
    pub https_ip: Ipv4Addr,
    /// Delay before every answer (latency mode).
    pub delay: Duration,
    /// Queries answered, for benchmarks.
    pub queries: Arc<AtomicU64>,
}

/// What one query gets.
enum Reply {
    Records(Vec<Record>),
    NxDomain,
    Code(ResponseCode),
    Silence,
}

impl LabDnsHandler {
    fn answer(&self, qname: &Name, qtype: RecordType) -> Reply {
        let mut text = qname.to_ascii();
        if text.ends_with('.') {
            text.pop();
        }
        text.make_ascii_lowercase();
        if let Some(reply) = self.provider_answer(&text, qname, qtype) {
            return reply;
        }
        if let Some(behaviour) = super::smtp::MxBehaviour::of_host(&text) {
            return match qtype {
                RecordType::A => Reply::Records(vec![a_record(qname, behaviour.address())]),
                _ => Reply::Records(Vec::new()),
            };
        }
        // Split `<prefix>.<domain>` where the domain is `<label>.test`.
        let (prefix, domain) = split_domain(&text);
        let Some(scenario) = scenario_of(domain) else {
            return Reply::NxDomain;
        };
        if scenario.mx == Mx::NxDomain {
            return Reply::NxDomain;
        }
        match prefix {
            "_mta-sts" => self.txt_answer(qname, qtype, scenario.sts),
            "_smtp._tls" => self.txt_answer(qname, qtype, scenario.tlsrpt),
            "mta-sts" => self.host_answer(qname, qtype, scenario),
            "" => match qtype {
                RecordType::MX => Reply::Records(mx_records(qname, domain, scenario.mx)),
                _ => Reply::Records(Vec::new()),
            },
            "mx1" | "mx2" => match qtype {
                RecordType::A => {
                    // Loopback where nothing listens: an MX probe ends at once (refused).
                    Reply::Records(vec![a_record(qname, super::smtp::REFUSING_ADDRESS)])
                }
                _ => Reply::Records(Vec::new()),
            },
            _ => Reply::NxDomain,
        }
    }

    /// The scenario's own name-server delay (a slow server), if any.
    fn scenario_delay(&self, qname: &Name) -> Option<Duration> {
        let mut text = qname.to_ascii();
        if text.ends_with('.') {
            text.pop();
        }
        text.make_ascii_lowercase();
        let (_, domain) = split_domain(&text);
        let delay = scenario_of(domain)?.dns_delay_ms;
        (delay > 0).then(|| Duration::from_millis(delay))
    }

    fn provider_answer(&self, text: &str, qname: &Name, qtype: RecordType) -> Option<Reply> {
        if !text.ends_with(".provider.test") && text != "provider.test" {
            return None;
        }
        Some(match (text, qtype) {
            (PROVIDER_STS, RecordType::TXT) => {
                Reply::Records(vec![txt_record(qname, &[PROVIDER_RECORD])])
            }
            (PROVIDER_HOST, RecordType::A) => Reply::Records(vec![a_record(qname, self.https_ip)]),
            (PROVIDER_STS | PROVIDER_HOST | "provider.test", _) => Reply::Records(Vec::new()),
            _ => Reply::NxDomain,
        })
    }

    fn txt_answer(&self, qname: &Name, qtype: RecordType, txt: Txt) -> Reply {
        match txt {
            Txt::None => Reply::Records(Vec::new()),
            Txt::ServFail => Reply::Code(ResponseCode::ServFail),
            Txt::Refused => Reply::Code(ResponseCode::Refused),
            Txt::Silent => Reply::Silence,
            Txt::Records(records) if qtype == RecordType::TXT => Reply::Records(
                records
                    .iter()
                    .map(|strings| txt_record(qname, strings))
                    .collect(),
            ),
            Txt::Records(_) => Reply::Records(Vec::new()),
            Txt::Cname(target) => {
                let Ok(target_name) = Name::from_ascii(format!("{target}.")) else {
                    return Reply::Code(ResponseCode::ServFail);
                };
                let mut records = vec![Record::from_rdata(
                    qname.clone(),
                    TTL,
                    RData::CNAME(CNAME(target_name.clone())),
                )];
                if qtype == RecordType::TXT && target == PROVIDER_STS {
                    records.push(txt_record(&target_name, &[PROVIDER_RECORD]));
                }
                Reply::Records(records)
            }
        }
    }

    fn host_answer(&self, qname: &Name, qtype: RecordType, scenario: &Scenario) -> Reply {
        let ip = match scenario.host {
            PolicyHost::Missing => return Reply::Records(Vec::new()),
            PolicyHost::Lab => self.https_ip,
            PolicyHost::Refusing => Ipv4Addr::new(127, 0, 0, 2),
            PolicyHost::Private => Ipv4Addr::new(10, 255, 255, 1),
            PolicyHost::ServFail => return Reply::Code(ResponseCode::ServFail),
            PolicyHost::RefusingThenLab => {
                return Reply::Records(match qtype {
                    RecordType::A => vec![
                        a_record(qname, Ipv4Addr::new(127, 0, 0, 2)),
                        a_record(qname, self.https_ip),
                    ],
                    _ => Vec::new(),
                });
            }
            PolicyHost::PrivateV4WithV6 => {
                return Reply::Records(match qtype {
                    RecordType::A => vec![a_record(qname, Ipv4Addr::new(10, 255, 255, 1))],
                    RecordType::AAAA => vec![Record::from_rdata(
                        qname.clone(),
                        TTL,
                        RData::AAAA(AAAA(std::net::Ipv6Addr::LOCALHOST)),
                    )],
                    _ => Vec::new(),
                });
            }
            PolicyHost::ProviderCname => {
                let Ok(target) = Name::from_ascii(format!("{PROVIDER_HOST}.")) else {
                    return Reply::Code(ResponseCode::ServFail);
                };
                let mut records = vec![Record::from_rdata(
                    qname.clone(),
                    TTL,
                    RData::CNAME(CNAME(target.clone())),
                )];
                if qtype == RecordType::A {
                    records.push(a_record(&target, self.https_ip));
                }
                return Reply::Records(records);
            }
        };
        match qtype {
            RecordType::A => Reply::Records(vec![a_record(qname, ip)]),
            _ => Reply::Records(Vec::new()),
        }
    }
}

/// `_mta-sts.x.test` → (`_mta-sts`, `x.test`); `x.test` → (``, `x.test`).
fn split_domain(name: &str) -> (&str, &str) {
    let Some(without_tld) = name.strip_suffix(".test") else {
        return ("", name);
    };
    match without_tld.rfind('.') {
        Some(dot) => (&name[..dot], &name[dot + 1..]),
        None => ("", name),
    }
}

fn txt_record(name: &Name, strings: &[&str]) -> Record {
    let txt = TXT::new(strings.iter().map(|s| (*s).to_owned()).collect());
    Record::from_rdata(name.clone(), TTL, RData::TXT(txt))
}

fn a_record(name: &Name, ip: Ipv4Addr) -> Record {
    Record::from_rdata(name.clone(), TTL, RData::A(A(ip)))
}

fn mx_records(qname: &Name, domain: &str, mx: Mx) -> Vec<Record> {
    let hosts: &[(u16, &str)] = match mx {
        Mx::Standard => &[(10, "mx1"), (20, "mx2")],
        Mx::WithUncovered => &[(10, "mx1"), (20, "mx2"), (30, "backup.example.net.")],
        Mx::Null => &[(0, ".")],
        Mx::NullAmongReal => &[(0, "."), (10, "mx1")],
        Mx::Hosts(hosts) => hosts,
        Mx::None | Mx::NxDomain => &[],
    };
    hosts
        .iter()
        .filter_map(|(preference, host)| {
            let exchange = if *host == "." {
                Name::root()
            } else if host.ends_with('.') {
                Name::from_ascii(host).ok()?
            } else {
                Name::from_ascii(format!("{host}.{domain}.")).ok()?
            };
            Some(Record::from_rdata(
                qname.clone(),
                TTL,
                RData::MX(MX::new(*preference, exchange)),
            ))
        })
        .collect()
}

#[async_trait::async_trait]
impl RequestHandler for LabDnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        self.queries.fetch_add(1, Ordering::Relaxed);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let fallback = || {
            let mut metadata =
                Metadata::new(request.metadata.id, MessageType::Response, OpCode::Query);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        };
        let Ok(info) = request.request_info() else {
            return fallback();
        };
        let query = info.query.original().clone();
        if let Some(delay) = self.scenario_delay(query.name()) {
            tokio::time::sleep(delay).await;
        }
        let reply = self.answer(query.name(), query.query_type());
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &request.edns {
            builder.edns(edns);
        }
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.recursion_available = false;
        let sent = match reply {
            Reply::Silence => return fallback(),
            Reply::Code(code) => {
                response_handle
                    .send_response(builder.error_msg(&request.metadata, code))
                    .await
            }
            Reply::NxDomain => {
                metadata.response_code = ResponseCode::NXDomain;
                response_handle
                    .send_response(builder.build(metadata, &[], &[], &[], &[]))
                    .await
            }
            Reply::Records(records) => {
                response_handle
                    .send_response(builder.build(metadata, records.iter(), &[], &[], &[]))
                    .await
            }
        };
        sent.unwrap_or_else(|_| fallback())
    }
}

/// Binds UDP and TCP on the same loopback port and serves until the token is cancelled.
pub async fn start(
    handler: LabDnsHandler,
    ip: Ipv4Addr,
) -> std::io::Result<(SocketAddr, hickory_server::Server<LabDnsHandler>)> {
    // Find a port free for both protocols.
    for _ in 0..50 {
        let udp = tokio::net::UdpSocket::bind((ip, 0)).await?;
        let address = udp.local_addr()?;
        let Ok(tcp) = tokio::net::TcpListener::bind(address).await else {
            continue;
        };
        let mut server = hickory_server::Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64 * 1024);
        return Ok((address, server));
    }
    Err(std::io::Error::other(
        "no loopback port free for both UDP and TCP",
    ))
}
