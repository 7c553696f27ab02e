//! The batch scan: a streamed input list, validated under bounded concurrency, written by a
//! single consumer that owns the writer, the statistics and the progress display.

pub mod fail_on;
pub mod input;
pub mod job;
pub mod mx_cache;
pub mod mx_stats;
pub mod pipeline;
pub mod progress;
pub mod resume;
pub mod shard;
pub mod stats;
