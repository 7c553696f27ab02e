//! Fuzz target `tlsrpt`: the _smtp._tls TXT record (lines = TXT records) through evaluate_tlsrpt_records and parse_tlsrpt_record.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mta_sts_scan_fuzz::check_tlsrpt(data);
});
