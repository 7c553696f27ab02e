//! Fuzz target `domain`: normalize_domain: output shape, idempotence, agreement with validate_mx_pattern; and mx_pattern_matches.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mta_sts_scan_fuzz::check_domain(data);
});
