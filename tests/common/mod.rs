//! Shared by the CLI tests: the binary with a clean environment, and the in-process test
//! internet with the flags that make the binary reach it.

#![allow(dead_code)] // each test file uses its own subset

use std::process::Command;

use mta_sts_scan::lab::{LabOptions, TestInternet};

pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mta-sts-scan"));
    // Hermetic: no MTA_STS_SCAN_*, JOB_COMPLETION_INDEX or proxy setting leaks in from outside.
    command.env_clear();
    command
}

pub struct Lab {
    pub internet: TestInternet,
    pub ca_file: tempfile::NamedTempFile,
}

pub async fn lab() -> Lab {
    let internet = TestInternet::start(LabOptions::default()).await.unwrap();
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), internet.ca_pem()).unwrap();
    Lab { internet, ca_file }
}

impl Lab {
    /// `mta-sts-scan SUBCOMMAND` with the flags that reach the test internet.
    pub fn command(&self, subcommand: &str) -> Command {
        let mut command = binary();
        command
            .arg(subcommand)
            .args(["--resolver", &self.internet.dns_address.to_string()])
            .args(["--policy-port", &self.internet.https_port.to_string()])
            .arg("--ca-file")
            .arg(self.ca_file.path())
            .args(["--allow-private-addresses", "--dns-timeout", "800ms"])
            .args(["--connect-timeout", "2s", "--fetch-timeout", "3s"]);
        command
    }
}
