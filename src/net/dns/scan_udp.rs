//! The scanning DNS path (`--dns-engine scan`, the default): a small pool of long-lived UDP
//! sockets shared by every lookup, messages built and parsed with hickory-proto.
//!
//! Each socket is bound once to a port the OS picks at random and read by one task. A query gets a
//! random 16-bit ID unused on its socket; an answer is accepted only when its ID, its question
//! (name, type, class) and its source address all match the query, so stray or spoofed
//! datagrams are dropped and the query keeps waiting. Truncated answers are asked again over TCP.
//! A lookup asks the name servers in order: a timeout is tried again on the same server
//! (`attempts`), SERVFAIL, REFUSED or another error moves on to the next server; `retries` then
//! repeats the whole round after a backoff when it ended in SERVFAIL or a timeout.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{OnceCell, Semaphore, oneshot};
use tokio::task::JoinHandle;

use super::{Answer, DnsSettings, Engine, MAX_NAME_OCTETS, absolute_name};
use crate::net::{DnsFailure, NameStatus};

/// UDP payload size advertised with EDNS(0) (DNS flag day 2020: no IP fragmentation).
const EDNS_PAYLOAD: u16 = 1232;

/// CNAME hops followed, within one answer and across follow-up queries.
const MAX_CNAME_HOPS: usize = 8;

/// Consecutive timeouts after which a name server is asked last instead of first.
const SICK_AFTER_TIMEOUTS: u32 = 3;

/// Most queries waiting on one socket: IDs stay sparse, so a blind guess rarely hits one.
const MAX_PENDING_PER_SOCKET: usize = 4096;

/// DNS over a pool of long-lived UDP sockets (TCP on truncation).
#[derive(Clone)]
pub struct ScanDns {
    inner: Arc<Inner>,
}

struct Inner {
    servers: Vec<Server>,
    timeout: Duration,
    attempts: usize,
    retries: u32,
    retry_backoff: Duration,
    tcp_only: bool,
    sockets_per_family: usize,
    /// Bound on queries in flight (beyond it, lookups wait their turn).
    in_flight: Semaphore,
    /// The sockets, bound on first use (inside the runtime).
    pool: OnceCell<Pool>,
    next_lane: AtomicUsize,
}

struct Server {
    address: SocketAddr,
    /// Timeouts in a row; an answer resets it.
    timeouts: AtomicU32,
}

/// The bound sockets and their reader tasks, stopped when the last handle goes.
struct Pool {
    v4: Vec<Arc<Lane>>,
    v6: Vec<Arc<Lane>>,
    readers: Vec<JoinHandle<()>>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// One socket and the queries waiting for an answer on it, by ID.
struct Lane {
    socket: UdpSocket,
    pending: Mutex<HashMap<u16, Pending>>,
    tokens: AtomicU64,
}

struct Pending {
    /// Distinguishes this query from a later one that reuses the ID.
    token: u64,
    server: SocketAddr,
    name: Name,
    kind: RecordType,
    reply: oneshot::Sender<Message>,
}

impl ScanDns {
    /// Checks the settings; sockets are bound on the first query. Without `--resolver` the
    /// name servers of `/etc/resolv.conf` are used.
    pub fn new(settings: &DnsSettings) -> Result<Self, String> {
        let addresses = if settings.nameservers.is_empty() {
            system_nameservers()?
        } else {
            settings.nameservers.clone()
        };
        if addresses.is_empty() {
            return Err("no name server configured".into());
        }
        let sockets_per_family = std::thread::available_parallelism()
            .map_or(2, usize::from)
            .clamp(2, 16);
        let in_flight = settings
            .max_in_flight
            .clamp(1, MAX_PENDING_PER_SOCKET * sockets_per_family);
        Ok(ScanDns {
            inner: Arc::new(Inner {
                servers: addresses
                    .into_iter()
                    .map(|address| Server {
                        address,
                        timeouts: AtomicU32::new(0),
                    })
                    .collect(),
                timeout: settings.timeout,
                attempts: settings.attempts.max(1),
                retries: settings.retries,
                retry_backoff: settings.retry_backoff,
                tcp_only: settings.tcp_only,
                sockets_per_family,
                in_flight: Semaphore::new(in_flight),
                pool: OnceCell::new(),
                next_lane: AtomicUsize::new(0),
            }),
        })
    }

    /// One lookup: CNAMEs followed to the records of the asked type.
    async fn lookup(&self, name: &str, kind: RecordType) -> Result<Answer, DnsFailure> {
        // A name longer than DNS allows (a 250-octet domain under `_mta-sts.`) cannot exist.
        if name.len() > MAX_NAME_OCTETS {
            return Ok(Answer::nx_domain());
        }
        let mut current = absolute_name(name)?;
        let mut records = Vec::new();
        for _ in 0..MAX_CNAME_HOPS {
            let message = self.inner.resolve(&current, kind).await?;
            let status = if message.metadata.response_code == ResponseCode::NXDomain {
                NameStatus::NxDomain
            } else {
                NameStatus::Exists
            };
            // Walk the CNAME chain the answer carries, from the name asked.
            let mut chain = vec![current.clone()];
            while chain.len() <= MAX_CNAME_HOPS {
                let owner = &chain[chain.len() - 1];
                let next = message
                    .answers
                    .iter()
                    .find_map(|record| match &record.data {
                        RData::CNAME(target) if record.name == *owner => Some(target.0.clone()),
                        _ => None,
                    });
                match next {
                    Some(target) if !chain.contains(&target) => chain.push(target),
                    _ => break,
                }
            }
            let last = chain[chain.len() - 1].clone();
            let complete = kind == RecordType::CNAME
                || message
                    .answers
                    .iter()
                    .any(|record| record.record_type() == kind && record.name == last);
            records.extend(
                message
                    .answers
                    .into_iter()
                    .filter(|record| chain.contains(&record.name)),
            );
            if status == NameStatus::NxDomain || complete || last == current {
                return Ok(Answer { status, records });
            }
            // The answer stopped at a CNAME: ask for its target.
            current = last;
        }
        Err(DnsFailure::Other(format!(
            "CNAME chain of {name} longer than {MAX_CNAME_HOPS}"
        )))
    }
}

impl Engine for ScanDns {
    async fn query(&self, name: &str, kind: RecordType) -> Result<Answer, DnsFailure> {
        self.lookup(name, kind).await
    }
}

impl Inner {
    /// One question, with `retries` rounds over the name servers after SERVFAIL or a timeout.
    async fn resolve(&self, name: &Name, kind: RecordType) -> Result<Message, DnsFailure> {
        let mut retries_left = self.retries;
        let mut backoff = self.retry_backoff;
        loop {
            match self.round(name, kind).await {
                Err(DnsFailure::ServFail | DnsFailure::Timeout) if retries_left > 0 => {
                    retries_left -= 1;
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
                other => return other,
            }
        }
    }

    /// Asks the name servers in turn (healthy ones first) until one gives an answer that is
    /// not an error: NOERROR or NXDOMAIN.
    async fn round(&self, name: &Name, kind: RecordType) -> Result<Message, DnsFailure> {
        let mut last = DnsFailure::Timeout;
        for index in self.server_order() {
            let server = &self.servers[index];
            for _ in 0..self.attempts {
                match self.exchange(server.address, name, kind).await {
                    Ok(message) => {
                        server.timeouts.store(0, Ordering::Relaxed);
                        match message.metadata.response_code {
                            ResponseCode::NoError | ResponseCode::NXDomain => return Ok(message),
                            ResponseCode::ServFail => last = DnsFailure::ServFail,
                            ResponseCode::Refused => last = DnsFailure::Refused,
                            code => {
                                last = DnsFailure::Other(format!(
                                    "{} answered {code}",
                                    server.address
                                ));
                            }
                        }
                        break;
                    }
                    Err(DnsFailure::Timeout) => {
                        server.timeouts.fetch_add(1, Ordering::Relaxed);
                        last = DnsFailure::Timeout;
                    }
                    Err(failure) => {
                        last = failure;
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    /// Server indexes in configured order, those with a run of timeouts last.
    fn server_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.servers.len()).collect();
        if self.servers.len() > 1 {
            order.sort_by_key(|&index| {
                self.servers[index].timeouts.load(Ordering::Relaxed) >= SICK_AFTER_TIMEOUTS
            });
        }
        order
    }

    /// One exchange with one server: UDP, then TCP when the answer is truncated.
    async fn exchange(
        &self,
        server: SocketAddr,
        name: &Name,
        kind: RecordType,
    ) -> Result<Message, DnsFailure> {
        if self.tcp_only {
            return self.exchange_tcp(server, name, kind).await;
        }
        let message = self.exchange_udp(server, name, kind).await?;
        if message.metadata.truncation {
            return self.exchange_tcp(server, name, kind).await;
        }
        Ok(message)
    }

    async fn pool(&self) -> Result<&Pool, DnsFailure> {
        self.pool
            .get_or_try_init(|| async {
                let mut pool = Pool {
                    v4: Vec::new(),
                    v6: Vec::new(),
                    readers: Vec::new(),
                };
                let wants_v4 = self.servers.iter().any(|s| s.address.is_ipv4());
                let wants_v6 = self.servers.iter().any(|s| s.address.is_ipv6());
                for (wanted, unspecified, lanes) in [
                    (wants_v4, IpAddr::V4(Ipv4Addr::UNSPECIFIED), &mut pool.v4),
                    (wants_v6, IpAddr::V6(Ipv6Addr::UNSPECIFIED), &mut pool.v6),
                ] {
                    if !wanted {
                        continue;
                    }
                    for _ in 0..self.sockets_per_family {
                        // Port 0: the OS picks a random ephemeral port.
                        let socket = UdpSocket::bind(SocketAddr::new(unspecified, 0))
                            .await
                            .map_err(|e| {
                                DnsFailure::Other(format!("cannot open a UDP socket: {e}"))
                            })?;
                        let lane = Arc::new(Lane {
                            socket,
                            pending: Mutex::new(HashMap::new()),
                            tokens: AtomicU64::new(0),
                        });
                        pool.readers
                            .push(tokio::spawn(read_answers(Arc::clone(&lane))));
                        lanes.push(lane);
                    }
                }
                Ok(pool)
            })
            .await
    }

    async fn exchange_udp(
        &self,
        server: SocketAddr,
        name: &Name,
        kind: RecordType,
    ) -> Result<Message, DnsFailure> {
        let pool = self.pool().await?;
        let lanes = if server.is_ipv4() { &pool.v4 } else { &pool.v6 };
        if lanes.is_empty() {
            return Err(DnsFailure::Other(format!("no socket for {server}")));
        }
        let lane = &lanes[self.next_lane.fetch_add(1, Ordering::Relaxed) % lanes.len()];
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| DnsFailure::Other("resolver closed".into()))?;
        let (reply, answer) = oneshot::channel();
        let registered = lane.register(server, name, kind, reply);
        let packet = encode_query(registered.id, name, kind)?;
        lane.socket
            .send_to(&packet, server)
            .await
            .map_err(|e| DnsFailure::Other(format!("cannot send to {server}: {e}")))?;
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(_)) => Err(DnsFailure::Other("the answer reader stopped".into())),
            Err(_) => Err(DnsFailure::Timeout),
        }
    }

    async fn exchange_tcp(
        &self,
        server: SocketAddr,
        name: &Name,
        kind: RecordType,
    ) -> Result<Message, DnsFailure> {
        let exchange = async {
            let io = |e: std::io::Error| DnsFailure::Other(format!("TCP to {server}: {e}"));
            let mut stream = TcpStream::connect(server).await.map_err(io)?;
            let id: u16 = rand::random();
            let packet = encode_query(id, name, kind)?;
            let length = u16::try_from(packet.len())
                .map_err(|_| DnsFailure::Other("query too long".into()))?;
            let mut framed = Vec::with_capacity(packet.len() + 2);
            framed.extend_from_slice(&length.to_be_bytes());
            framed.extend_from_slice(&packet);
            stream.write_all(&framed).await.map_err(io)?;
            let mut length = [0u8; 2];
            stream.read_exact(&mut length).await.map_err(io)?;
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(length))];
            stream.read_exact(&mut body).await.map_err(io)?;
            let message = Message::from_vec(&body).map_err(|e| {
                DnsFailure::Other(format!("malformed TCP answer from {server}: {e}"))
            })?;
            if message.metadata.id != id || !answers_question(&message, name, kind) {
                return Err(DnsFailure::Other(format!(
                    "TCP answer from {server} does not match the question"
                )));
            }
            Ok(message)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(DnsFailure::Timeout))
    }
}

/// A registered query; leaving (answered, timed out or cancelled) unregisters it.
struct Registered<'a> {
    lane: &'a Lane,
    id: u16,
    token: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut pending = self
            .lane
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if pending.get(&self.id).is_some_and(|p| p.token == self.token) {
            pending.remove(&self.id);
        }
    }
}

impl Lane {
    /// Registers a query under a random ID not in use on this socket.
    fn register(
        &self,
        server: SocketAddr,
        name: &Name,
        kind: RecordType,
        reply: oneshot::Sender<Message>,
    ) -> Registered<'_> {
        let token = self.tokens.fetch_add(1, Ordering::Relaxed);
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut id: u16 = rand::random();
        while pending.contains_key(&id) {
            id = rand::random();
        }
        pending.insert(
            id,
            Pending {
                token,
                server,
                name: name.clone(),
                kind,
                reply,
            },
        );
        Registered {
            lane: self,
            id,
            token,
        }
    }

    /// Hands a datagram to the query it answers; anything else is dropped.
    fn deliver(&self, datagram: &[u8], from: SocketAddr) {
        let [high, low, ..] = *datagram else { return };
        let id = u16::from_be_bytes([high, low]);
        {
            let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            match pending.get(&id) {
                Some(query) if query.server == from => {}
                _ => return,
            }
        }
        let Ok(message) = Message::from_vec(datagram) else {
            return;
        };
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let matches = pending.get(&id).is_some_and(|query| {
            query.server == from && answers_question(&message, &query.name, query.kind)
        });
        if matches && let Some(query) = pending.remove(&id) {
            // The asker may have given up in the meantime; nothing to do then.
            let _ = query.reply.send(message);
        }
    }
}

/// Reads one socket until the pool is dropped.
async fn read_answers(lane: Arc<Lane>) {
    let mut buffer = vec![0u8; 65_535];
    loop {
        match lane.socket.recv_from(&mut buffer).await {
            Ok((length, from)) => lane.deliver(&buffer[..length], from),
            // ICMP errors and the like: nothing to read, try again shortly.
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

/// Whether a message is a response to exactly this question.
fn answers_question(message: &Message, name: &Name, kind: RecordType) -> bool {
    message.metadata.message_type == MessageType::Response
        && message.metadata.op_code == OpCode::Query
        && matches!(message.queries.as_slice(), [query]
            if query.query_type() == kind
                && query.query_class() == DNSClass::IN
                && query.name() == name)
}

fn encode_query(id: u16, name: &Name, kind: RecordType) -> Result<Vec<u8>, DnsFailure> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name.clone(), kind));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    message.set_edns(edns);
    message
        .to_vec()
        .map_err(|e| DnsFailure::Other(format!("cannot encode the query for {name}: {e}")))
}

/// The name servers of `/etc/resolv.conf` (UDP port of each).
fn system_nameservers() -> Result<Vec<SocketAddr>, String> {
    let (system, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?;
    let mut servers = Vec::new();
    for server in system.name_servers() {
        let port = server
            .connections
            .iter()
            .map(|connection| connection.port)
            .next()
            .unwrap_or(53);
        let address = SocketAddr::new(server.ip, port);
        if !servers.contains(&address) {
            servers.push(address);
        }
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{CNAME, TXT};
    use tokio::net::TcpListener;

    /// What the fake name server sends back for one query.
    enum Reply {
        /// A datagram from the server's own socket.
        Own(Message),
        /// A datagram from another socket on loopback (a spoofer with the wrong port).
        Stranger(Message),
    }

    /// A UDP name server on loopback that answers each query as `answer` says.
    async fn fake_server<F>(answer: F) -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>)
    where
        F: Fn(&Message) -> Vec<Reply> + Send + 'static,
    {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&queries);
        let task = tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            loop {
                let Ok((length, from)) = socket.recv_from(&mut buffer).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let query = Message::from_vec(&buffer[..length]).unwrap();
                for send in answer(&query) {
                    let (via, message) = match send {
                        Reply::Own(message) => (&socket, message),
                        Reply::Stranger(message) => (&stranger, message),
                    };
                    via.send_to(&message.to_vec().unwrap(), from).await.unwrap();
                }
            }
        });
        (address, queries, task)
    }

    /// The response to `query` carrying one TXT record with `text` at the asked name.
    fn txt_reply(query: &Message, text: &str) -> Message {
        let mut reply = Message::response(query.metadata.id, OpCode::Query);
        reply.metadata.recursion_available = true;
        reply.add_queries(query.queries.clone());
        let name = query.queries[0].name().clone();
        reply.add_answer(Record::from_rdata(
            name,
            60,
            RData::TXT(TXT::new(vec![text.to_owned()])),
        ));
        reply
    }

    fn settings(servers: Vec<SocketAddr>) -> DnsSettings {
        DnsSettings {
            nameservers: servers,
            timeout: Duration::from_millis(500),
            attempts: 1,
            retries: 0,
            ..DnsSettings::default()
        }
    }

    async fn txt_of(dns: &ScanDns, name: &str) -> Result<Vec<String>, DnsFailure> {
        let answer = crate::net::Dns::txt(dns, name).await?;
        Ok(answer.records)
    }

    #[tokio::test]
    async fn an_answer_with_the_wrong_id_is_dropped() {
        let (server, _, _task) = fake_server(|query| {
            let mut forged = txt_reply(query, "forged");
            forged.metadata.id = query.metadata.id.wrapping_add(1);
            vec![Reply::Own(forged), Reply::Own(txt_reply(query, "genuine"))]
        })
        .await;
        let dns = ScanDns::new(&settings(vec![server])).unwrap();
        assert_eq!(txt_of(&dns, "a.example").await.unwrap(), ["genuine"]);
    }

    #[tokio::test]
    async fn an_answer_to_another_question_is_dropped() {
        let (server, _, _task) = fake_server(|query| {
            let mut other_name = txt_reply(query, "forged name");
            let mut question = query.queries[0].clone();
            question.set_name(Name::from_ascii("b.example.").unwrap());
            other_name.queries = vec![question.clone()];
            let mut other_type = txt_reply(query, "forged type");
            other_type.queries[0].set_query_type(RecordType::A);
            let mut no_question = txt_reply(query, "forged empty");
            no_question.queries.clear();
            vec![
                Reply::Own(other_name),
                Reply::Own(other_type),
                Reply::Own(no_question),
                Reply::Own(txt_reply(query, "genuine")),
            ]
        })
        .await;
        let dns = ScanDns::new(&settings(vec![server])).unwrap();
        assert_eq!(txt_of(&dns, "a.example").await.unwrap(), ["genuine"]);
    }

    #[tokio::test]
    async fn an_answer_from_another_address_is_dropped() {
        let (server, _, _task) = fake_server(|query| {
            vec![
                Reply::Stranger(txt_reply(query, "forged")),
                Reply::Own(txt_reply(query, "genuine")),
            ]
        })
        .await;
        let dns = ScanDns::new(&settings(vec![server])).unwrap();
        assert_eq!(txt_of(&dns, "a.example").await.unwrap(), ["genuine"]);
    }

    #[tokio::test]
    async fn only_forged_answers_end_in_a_timeout() {
        let (server, _, _task) =
            fake_server(|query| vec![Reply::Stranger(txt_reply(query, "forged"))]).await;
        let dns = ScanDns::new(&settings(vec![server])).unwrap();
        assert_eq!(txt_of(&dns, "a.example").await, Err(DnsFailure::Timeout));
        // The query left nothing behind on its socket.
        let pool = dns.inner.pool.get().unwrap();
        assert!(
            pool.v4
                .iter()
                .all(|lane| lane.pending.lock().unwrap().is_empty())
        );
    }

    #[tokio::test]
    async fn servfail_from_the_first_server_asks_the_next() {
        let (failing, failing_queries, _a) = fake_server(|query| {
            let mut reply =
                Message::error_msg(query.metadata.id, OpCode::Query, ResponseCode::ServFail);
            reply.add_queries(query.queries.clone());
            vec![Reply::Own(reply)]
        })
        .await;
        let (working, _, _b) =
            fake_server(|query| vec![Reply::Own(txt_reply(query, "second"))]).await;
        let dns = ScanDns::new(&settings(vec![failing, working])).unwrap();
        assert_eq!(txt_of(&dns, "a.example").await.unwrap(), ["second"]);
        assert_eq!(failing_queries.load(Ordering::SeqCst), 1);
        // With only the failing server, the failure is SERVFAIL.
        let dns = ScanDns::new(&settings(vec![failing])).unwrap();
        assert_eq!(txt_of(&dns, "a.example").await, Err(DnsFailure::ServFail));
    }

    #[tokio::test]
    async fn a_truncated_answer_is_asked_again_over_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let udp = UdpSocket::bind(address).await.unwrap();
        let _udp_task = tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            while let Ok((length, from)) = udp.recv_from(&mut buffer).await {
                let query = Message::from_vec(&buffer[..length]).unwrap();
                let mut reply = Message::response(query.metadata.id, OpCode::Query);
                reply.add_queries(query.queries.clone());
                reply.metadata.truncation = true;
                udp.send_to(&reply.to_vec().unwrap(), from).await.unwrap();
            }
        });
        let _tcp_task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut length = [0u8; 2];
            stream.read_exact(&mut length).await.unwrap();
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(length))];
            stream.read_exact(&mut body).await.unwrap();
            let query = Message::from_vec(&body).unwrap();
            let big = "x".repeat(200);
            let reply = txt_reply(&query, &big).to_vec().unwrap();
            let length = u16::try_from(reply.len()).unwrap().to_be_bytes();
            stream.write_all(&length).await.unwrap();
            stream.write_all(&reply).await.unwrap();
        });
        let dns = ScanDns::new(&settings(vec![address])).unwrap();
        assert_eq!(txt_of(&dns, "a.example").await.unwrap(), ["x".repeat(200)]);
    }

    #[tokio::test]
    async fn a_cname_without_its_target_records_is_followed() {
        let (server, queries, _task) = fake_server(|query| {
            let asked = query.queries[0].name().to_ascii();
            if asked == "_mta-sts.a.example." {
                let mut reply = Message::response(query.metadata.id, OpCode::Query);
                reply.add_queries(query.queries.clone());
                reply.add_answer(Record::from_rdata(
                    query.queries[0].name().clone(),
                    60,
                    RData::CNAME(CNAME(Name::from_ascii("_mta-sts.host.example.").unwrap())),
                ));
                vec![Reply::Own(reply)]
            } else {
                vec![Reply::Own(txt_reply(query, "v=STSv1; id=1;"))]
            }
        })
        .await;
        let dns = ScanDns::new(&settings(vec![server])).unwrap();
        let answer = crate::net::Dns::txt(&dns, "_mta-sts.a.example")
            .await
            .unwrap();
        assert_eq!(answer.records, ["v=STSv1; id=1;"]);
        assert_eq!(answer.cname.as_deref(), Some("_mta-sts.host.example"));
        assert_eq!(queries.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn nxdomain_and_nodata_are_answers() {
        let (server, _, _task) = fake_server(|query| {
            let code = if query.queries[0].name().to_ascii().starts_with("missing") {
                ResponseCode::NXDomain
            } else {
                ResponseCode::NoError
            };
            let mut reply = Message::error_msg(query.metadata.id, OpCode::Query, code);
            reply.add_queries(query.queries.clone());
            vec![Reply::Own(reply)]
        })
        .await;
        let dns = ScanDns::new(&settings(vec![server])).unwrap();
        let missing = crate::net::Dns::mx(&dns, "missing.example").await.unwrap();
        assert_eq!(missing.status, NameStatus::NxDomain);
        let empty = crate::net::Dns::mx(&dns, "empty.example").await.unwrap();
        assert_eq!(empty.status, NameStatus::Exists);
        assert!(empty.hosts.is_empty());
    }
}
