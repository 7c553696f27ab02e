//! The resolver benchmark: the scan measured against the real ceiling, `dnsperf` replaying the
//! scan's exact query mix on a real `unbound` recursive resolver, each cold (a fresh resolver)
//! and warm (the same resolver again). unbound is started here on loopback with a stub zone for
//! `test.` pointing at the in-process test internet's authoritative server; the scan is the
//! release binary (`mta-sts-scan scan`) as a child process, so its CPU (user + sys from
//! `getrusage(RUSAGE_CHILDREN)`) is the scanner's alone.
//!
//! Needs `unbound` and `dnsperf` (`apt-get install unbound dnsperf`); without them it says so
//! and exits cleanly.
//!
//! `cargo bench --bench resolver -- [--domains N] [--concurrency C] [--unbound-threads T]
//!  [--worker-threads W] [--engine scan|hickory] [--dnsperf-clients C] [--dnsperf-outstanding Q]
//!  [--perf PREFIX]` (`--perf` records each scan with `perf record -g`; its CPU figure then
//!  includes perf's own overhead)

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mta_sts_scan::lab::scenarios::{Txt, realistic_mix, scenario_of};
use mta_sts_scan::lab::{LabOptions, TestInternet};
use mta_sts_scan::net::Dns;
use mta_sts_scan::net::dns::{DnsSettings, ScanDns};

struct Options {
    domains: u64,
    concurrency: usize,
    unbound_threads: usize,
    worker_threads: Option<usize>,
    engine: String,
    dnsperf_clients: usize,
    dnsperf_outstanding: usize,
    /// Record a profile of the scans with `perf record -g` into this file (prefix).
    perf: Option<String>,
}

fn options() -> Options {
    let mut options = Options {
        domains: 200_000,
        concurrency: 1000,
        unbound_threads: 1,
        worker_threads: None,
        engine: "scan".to_owned(),
        dnsperf_clients: 4,
        dnsperf_outstanding: 1000,
        perf: None,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1);
        let number = value.and_then(|v| v.parse::<u64>().ok());
        match (args[i].as_str(), number) {
            ("--domains", Some(v)) => options.domains = v.max(1),
            ("--concurrency", Some(v)) => options.concurrency = v as usize,
            ("--unbound-threads", Some(v)) => options.unbound_threads = (v as usize).max(1),
            ("--worker-threads", Some(v)) => options.worker_threads = Some((v as usize).max(1)),
            ("--dnsperf-clients", Some(v)) => options.dnsperf_clients = (v as usize).max(1),
            ("--dnsperf-outstanding", Some(v)) => options.dnsperf_outstanding = (v as usize).max(1),
            ("--engine", _) if value.is_some() => {
                options.engine = value.cloned().unwrap_or_default();
            }
            ("--perf", _) if value.is_some() => options.perf = value.cloned(),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    options
}

/// `name` on `PATH`, or in the sbin directories where Debian puts unbound.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A loopback port free (at the moment) for UDP and TCP.
fn free_port() -> u16 {
    for _ in 0..50 {
        let Ok(udp) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(address) = udp.local_addr() else {
            continue;
        };
        if std::net::TcpListener::bind(address).is_ok() {
            return address.port();
        }
    }
    panic!("no free loopback port");
}

/// The scan's query mix for one domain: both TXT lookups and MX, then A and AAAA of the policy
/// host when the domain has an MTA-STS record (what the validator asks, in that order).
fn queries_of(domain: &str, out: &mut String) -> u64 {
    out.push_str(&format!(
        "_mta-sts.{domain} TXT\n_smtp._tls.{domain} TXT\n{domain} MX\n"
    ));
    let has_record = scenario_of(domain)
        .is_some_and(|scenario| matches!(scenario.sts, Txt::Records(_) | Txt::Cname(_)));
    if has_record {
        out.push_str(&format!("mta-sts.{domain} A\nmta-sts.{domain} AAAA\n"));
        5
    } else {
        3
    }
}

struct Unbound {
    child: Child,
    address: SocketAddr,
    control: PathBuf,
    config: PathBuf,
}

impl Unbound {
    fn start(program: &Path, dir: &Path, lab_dns: SocketAddr, threads: usize) -> Unbound {
        let port = free_port();
        let control_port = free_port();
        let config = dir.join("unbound.conf");
        let text = format!(
            r#"server:
  interface: 127.0.0.1@{port}
  port: {port}
  do-daemonize: no
  use-syslog: no
  logfile: ""
  verbosity: 0
  username: ""
  chroot: ""
  directory: "{dir}"
  pidfile: ""
  num-threads: {threads}
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  do-ip6: no
  module-config: "iterator"
  qname-minimisation: no
  minimal-responses: yes
  prefetch: no
  msg-cache-size: 512m
  rrset-cache-size: 1024m
  key-cache-size: 1m
  neg-cache-size: 64m
  num-queries-per-thread: 4096
  outgoing-range: 8192
  jostle-timeout: 1000
  so-rcvbuf: 4m
  so-sndbuf: 4m
  unwanted-reply-threshold: 0
  statistics-cumulative: yes
  local-zone: "test." nodefault
  domain-insecure: "test."
stub-zone:
  name: "test."
  stub-addr: {lab_ip}@{lab_port}
remote-control:
  control-enable: yes
  control-interface: 127.0.0.1
  control-port: {control_port}
  control-use-cert: no
"#,
            dir = dir.display(),
            lab_ip = lab_dns.ip(),
            lab_port = lab_dns.port(),
        );
        std::fs::write(&config, text).unwrap();
        let child = Command::new(program)
            .arg("-d")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start unbound");
        let control = program.with_file_name("unbound-control");
        Unbound {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            control,
            config,
        }
    }

    /// Waits until unbound answers a lab name.
    async fn ready(&self) {
        let settings = DnsSettings {
            nameservers: vec![self.address],
            timeout: Duration::from_millis(200),
            attempts: 1,
            retries: 0,
            ..DnsSettings::default()
        };
        let dns = ScanDns::new(&settings).unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if dns.mx("provider.test").await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("unbound did not answer within 20 s");
    }

    /// Queries unbound has answered so far (`total.num.queries`), if unbound-control works.
    fn queries(&self) -> Option<u64> {
        let output = Command::new(&self.control)
            .arg("-c")
            .arg(&self.config)
            .arg("stats_noreset")
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines()
            .find_map(|line| line.strip_prefix("total.num.queries="))
            .and_then(|n| n.trim().parse().ok())
    }

    /// unbound's CPU time so far (user + sys), from /proc.
    fn cpu_seconds(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())) else {
            return 0.0;
        };
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        // After the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
            .sum();
        ticks / clock_ticks()
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// user + sys CPU seconds of the children waited for so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage writes into the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

struct Run {
    label: String,
    seconds: f64,
    queries: Option<u64>,
    cpu: Option<f64>,
    resolver_cpu: f64,
    load_before: String,
}

impl Run {
    fn domains_per_second(&self, domains: u64) -> f64 {
        domains as f64 / self.seconds
    }

    fn print(&self, domains: u64) {
        let queries = self.queries.map_or_else(
            || "?".to_owned(),
            |q| format!("{:.0}", q as f64 / self.seconds),
        );
        let cpu = self.cpu.map_or_else(
            || "-".to_owned(),
            |cpu| format!("{:.1}", cpu * 1e6 / domains as f64),
        );
        let resolver = self.queries.filter(|&q| q > 0).map_or_else(
            || "?".to_owned(),
            |q| format!("{:.1}", self.resolver_cpu * 1e6 / q as f64),
        );
        println!(
            "{:<16} {:>8.2} s {:>10.0} domains/s {:>10} queries/s  scanner CPU {:>7} µs/domain  unbound CPU {:>5} µs/query  load {}",
            self.label,
            self.seconds,
            self.domains_per_second(domains),
            queries,
            cpu,
            resolver,
            self.load_before,
        );
    }
}

fn dnsperf(program: &Path, unbound: &Unbound, file: &Path, options: &Options, label: &str) -> Run {
    let load_before = load();
    let queries_before = unbound.queries();
    let cpu_before = unbound.cpu_seconds();
    let started = Instant::now();
    let output = Command::new(program)
        .args(["-s", "127.0.0.1", "-p"])
        .arg(unbound.address.port().to_string())
        .arg("-d")
        .arg(file)
        .args(["-n", "1", "-t", "5", "-e", "-T", "1"])
        .arg("-c")
        .arg(options.dnsperf_clients.to_string())
        .arg("-q")
        .arg(options.dnsperf_outstanding.to_string())
        .output()
        .expect("cannot run dnsperf");
    let wall = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
    };
    let seconds = field("Run time (s):")
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(wall);
    let lost = field("Queries lost:").unwrap_or_else(|| "?".into());
    if lost != "0" {
        eprintln!("note: dnsperf {label}: {lost} queries lost");
    }
    Run {
        label: label.to_owned(),
        seconds,
        queries: unbound
            .queries()
            .zip(queries_before)
            .map(|(after, before)| after - before),
        cpu: None,
        resolver_cpu: unbound.cpu_seconds() - cpu_before,
        load_before,
    }
}

fn scan(
    binary: &Path,
    unbound: &Unbound,
    lab: &TestInternet,
    dir: &Path,
    list: &Path,
    options: &Options,
    label: &str,
) -> Run {
    let ca = dir.join("lab-ca.pem");
    std::fs::write(&ca, lab.ca_pem()).unwrap();
    let output = dir.join(format!("{label}.parquet"));
    let mut command = match &options.perf {
        Some(prefix) => {
            let mut perf = Command::new("perf");
            perf.args(["record", "-F", "999", "-g", "-o"])
                .arg(format!("{prefix}.{}.data", label.replace(' ', "-")))
                .arg("--")
                .arg(binary);
            perf
        }
        None => Command::new(binary),
    };
    command
        .arg("scan")
        .arg(list)
        .arg("-o")
        .arg(&output)
        .arg("--quiet")
        .args(["--dns-rate", "0", "--https-rate", "0"])
        .arg("--concurrency")
        .arg(options.concurrency.to_string())
        .arg("--resolver")
        .arg(unbound.address.to_string())
        .arg("--dns-engine")
        .arg(&options.engine)
        .arg("--policy-port")
        .arg(lab.https_port.to_string())
        .arg("--ca-file")
        .arg(&ca)
        .arg("--allow-private-addresses")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(threads) = options.worker_threads {
        command.env("TOKIO_WORKER_THREADS", threads.to_string());
    }
    let load_before = load();
    let queries_before = unbound.queries();
    let resolver_before = unbound.cpu_seconds();
    let cpu_before = children_cpu();
    let started = Instant::now();
    let result = command.output().expect("cannot run the scan");
    let seconds = started.elapsed().as_secs_f64();
    let cpu = children_cpu() - cpu_before;
    if !result.status.success() {
        eprintln!(
            "scan {label} failed ({}): {}",
            result.status,
            String::from_utf8_lossy(&result.stderr)
        );
    }
    let _ = std::fs::remove_file(&output);
    Run {
        label: label.to_owned(),
        seconds,
        queries: unbound
            .queries()
            .zip(queries_before)
            .map(|(after, before)| after - before),
        cpu: Some(cpu),
        resolver_cpu: unbound.cpu_seconds() - resolver_before,
        load_before,
    }
}

fn main() {
    let options = options();
    let (Some(unbound_program), Some(dnsperf_program)) =
        (find_program("unbound"), find_program("dnsperf"))
    else {
        println!(
            "resolver benchmark skipped: needs unbound and dnsperf (apt-get install unbound dnsperf)"
        );
        return;
    };
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_mta-sts-scan"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let lab = TestInternet::start(LabOptions::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("domains.txt");
        let queries_file = dir.path().join("queries.txt");
        let mut domains = String::new();
        let mut queries = String::new();
        let mut mix = 0;
        for n in 0..options.domains {
            let domain = realistic_mix(n);
            mix += queries_of(&domain, &mut queries);
            domains.push_str(&domain);
            domains.push('\n');
        }
        std::fs::File::create(&list)
            .and_then(|mut f| f.write_all(domains.as_bytes()))
            .unwrap();
        std::fs::File::create(&queries_file)
            .and_then(|mut f| f.write_all(queries.as_bytes()))
            .unwrap();
        println!(
            "resolver benchmark: {} domains, {} queries in the mix ({:.2}/domain), scan --concurrency {} --dns-engine {}, unbound {} thread(s), worker threads {}, dnsperf -c {} -q {}",
            options.domains,
            mix,
            mix as f64 / options.domains as f64,
            options.concurrency,
            options.engine,
            options.unbound_threads,
            options
                .worker_threads
                .map_or_else(|| "default".to_owned(), |w| w.to_string()),
            options.dnsperf_clients,
            options.dnsperf_outstanding,
        );

        let reference = {
            let unbound = Unbound::start(
                &unbound_program,
                dir.path(),
                lab.dns_address,
                options.unbound_threads,
            );
            unbound.ready().await;
            let cold = dnsperf(&dnsperf_program, &unbound, &queries_file, &options, "dnsperf cold");
            let warm = dnsperf(&dnsperf_program, &unbound, &queries_file, &options, "dnsperf warm");
            (cold, warm)
        };
        reference.0.print(options.domains);
        reference.1.print(options.domains);

        let scanned = {
            let unbound = Unbound::start(
                &unbound_program,
                dir.path(),
                lab.dns_address,
                options.unbound_threads,
            );
            unbound.ready().await;
            let cold = scan(&binary, &unbound, &lab, dir.path(), &list, &options, "scan cold");
            let warm = scan(&binary, &unbound, &lab, dir.path(), &list, &options, "scan warm");
            (cold, warm)
        };
        scanned.0.print(options.domains);
        scanned.1.print(options.domains);

        let n = options.domains;
        println!(
            "ratio scan ÷ dnsperf (domains/s): cold {:.2}, warm {:.2}",
            scanned.0.domains_per_second(n) / reference.0.domains_per_second(n),
            scanned.1.domains_per_second(n) / reference.1.domains_per_second(n),
        );
    });
}
