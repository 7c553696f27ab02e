//! Fuzz target `policy`: raw policy bytes through parse_policy_bytes and parse_policy, with the PolicyParse invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mta_sts_scan_fuzz::check_policy(data);
});
