//! Deterministic sharding: `--shard K/N` keeps the rows whose normalised domain hashes to K
//! modulo N, so N machines share one list without talking to each other. K can come from the
//! scheduler: `JOB_COMPLETION_INDEX` (Kubernetes Indexed Job) or `SLURM_ARRAY_TASK_ID`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::scan::input::InputRow;

/// Environment variables that carry the shard index, in order of preference.
pub const INDEX_VARIABLES: [&str; 2] = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"];

/// Shard K of N (0 ≤ K < N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Parses `K/N`, or `N` alone with K from the scheduler's environment (`lookup` reads it).
    pub fn parse(spec: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let spec = spec.trim();
        let (index, count) = match spec.split_once('/') {
            Some((k, n)) => (Some(k.trim()), n.trim()),
            None => (None, spec),
        };
        let count: u64 =
            count.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("--shard {spec:?}: N must be a positive number (K/N or N)")
            })?;
        let index: u64 = match index {
            Some(k) => k
                .parse()
                .map_err(|_| format!("--shard {spec:?}: K must be a number"))?,
            None => INDEX_VARIABLES
                .iter()
                .find_map(|name| lookup(name).map(|value| (name, value)))
                .ok_or_else(|| {
                    format!(
                        "--shard {count} needs the shard index: give K/N, or set {}",
                        INDEX_VARIABLES.join(" or ")
                    )
                })
                .and_then(|(name, value)| {
                    value
                        .trim()
                        .parse()
                        .map_err(|_| format!("{name}={value:?} is not a shard index"))
                })?,
        };
        if index >= count {
            return Err(format!("--shard {index}/{count}: K must be below N"));
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard handles `row` (by its normalised domain, or its raw value when it
    /// is not a domain, so every row lands in exactly one shard).
    pub fn accepts(&self, row: &InputRow) -> bool {
        if self.count == 1 {
            return true;
        }
        let hash = match crate::domain::normalize_domain(&row.value) {
            Ok(domain) if row.problem.is_none() => fnv1a(domain.as_bytes()),
            _ => fnv1a(row.value.as_bytes()),
        };
        hash % self.count == self.index
    }

    /// `results.parquet` → `results.shard-3-of-8.parquet`.
    pub fn output_path(&self, path: &Path) -> PathBuf {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default();
        let name = match path.extension() {
            Some(ext) => format!(
                "{stem}.shard-{}-of-{}.{}",
                self.index,
                self.count,
                ext.to_string_lossy()
            ),
            None => format!("{stem}.shard-{}-of-{}", self.index, self.count),
        };
        path.with_file_name(name)
    }
}

/// FNV-1a, 64 bit: stable across machines, versions and runs (unlike std's `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(value: &str) -> InputRow {
        InputRow {
            line: 1,
            rank: None,
            value: value.to_owned(),
            problem: None,
        }
    }

    #[test]
    fn parses_specs_and_scheduler_indexes() {
        let none = |_: &str| None;
        assert_eq!(Shard::parse("2/8", none), Ok(Shard { index: 2, count: 8 }));
        assert!(Shard::parse("8/8", none).is_err());
        assert!(Shard::parse("0/0", none).is_err());
        assert!(
            Shard::parse("8", none)
                .unwrap_err()
                .contains("JOB_COMPLETION_INDEX")
        );
        let k8s = |name: &str| (name == "JOB_COMPLETION_INDEX").then(|| "5".to_owned());
        assert_eq!(Shard::parse("8", k8s), Ok(Shard { index: 5, count: 8 }));
        let slurm = |name: &str| (name == "SLURM_ARRAY_TASK_ID").then(|| "1".to_owned());
        assert_eq!(Shard::parse("4", slurm), Ok(Shard { index: 1, count: 4 }));
    }

    #[test]
    fn every_row_lands_in_exactly_one_shard_by_its_normalised_domain() {
        let shards: Vec<Shard> = (0..5).map(|index| Shard { index, count: 5 }).collect();
        let mut sizes = [0; 5];
        for n in 0..10_000 {
            let value = format!("domain-{n}.example");
            let owners: Vec<usize> = (0..5)
                .filter(|i| shards[*i].accepts(&row(&value)))
                .collect();
            assert_eq!(owners.len(), 1);
            sizes[owners[0]] += 1;
            // The same domain in another spelling goes to the same shard.
            let upper = format!("DOMAIN-{n}.Example.");
            assert!(shards[owners[0]].accepts(&row(&upper)));
        }
        assert!(
            sizes.iter().all(|s| (1_700..2_300).contains(s)),
            "{sizes:?}"
        );
        // Stable across versions: a fixed domain has a fixed shard.
        assert_eq!(fnv1a(b"example.com") % 8, fnv1a(b"example.com") % 8);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn output_names_carry_the_shard() {
        let shard = Shard { index: 3, count: 8 };
        assert_eq!(
            shard.output_path(Path::new("out/results.parquet")),
            Path::new("out/results.shard-3-of-8.parquet")
        );
    }
}
