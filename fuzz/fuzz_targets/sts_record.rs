//! Fuzz target `sts_record`: the _mta-sts TXT record (lines = TXT records) through evaluate_sts_records and parse_sts_record.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mta_sts_scan_fuzz::check_sts_record(data);
});
