//! The scheduled-job files in `deploy/` and the `Containerfile`: the weekly CronJob scans N shards
//! with N pods into `s3://` Hive partitions with credentials from a Secret, the Slurm array
//! matches its shard count, the image is multi-stage and non-root, and the README shows the
//! CronJob verbatim.

use serde_norway::Value;

fn read(relative: &str) -> String {
    std::fs::read_to_string(format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("not a list: {value:?}"))
        .iter()
        .map(|item| item.as_str().expect("quote non-string args").to_owned())
        .collect()
}

fn flag_value<'a>(args: &'a [String], flag: &str) -> &'a str {
    let position = args.iter().position(|arg| arg == flag).unwrap();
    &args[position + 1]
}

#[test]
fn weekly_cronjob_writes_hive_partitions_with_secret_credentials() {
    let cronjob: Value =
        serde_norway::from_str(&read("deploy/k8s-weekly-s3-cronjob.yaml")).unwrap();
    assert_eq!(cronjob["kind"].as_str(), Some("CronJob"));
    let schedule = cronjob["spec"]["schedule"].as_str().unwrap();
    assert_eq!(schedule.split_whitespace().count(), 5, "{schedule}");
    assert_ne!(
        schedule.split_whitespace().nth(4),
        Some("*"),
        "weekly: {schedule}"
    );
    let job = &cronjob["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["completionMode"].as_str(), Some("Indexed"));
    let completions = job["completions"].as_u64().unwrap();
    assert_eq!(job["parallelism"].as_u64(), Some(completions));
    let container = &job["template"]["spec"]["containers"][0];
    assert!(
        container["command"].is_null(),
        "the image's default command is the binary"
    );
    let args = strings(&container["args"]);
    assert_eq!(args[0], "scan");
    assert_eq!(
        flag_value(&args, "--shard").parse::<u64>().unwrap(),
        completions
    );
    let output = flag_value(&args, "-o");
    assert!(output.starts_with("s3://"), "{output}");
    assert!(
        output.contains("/dt={date}/") && output.contains("{shard}"),
        "{output}"
    );
    assert!(flag_value(&args, "--summary").starts_with("s3://"));
    assert!(args.iter().any(|a| a == "--resume"));

    let env = container["env"].as_sequence().unwrap();
    for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        let variable = env
            .iter()
            .find(|v| v["name"].as_str() == Some(key))
            .unwrap_or_else(|| panic!("{key} is not set"));
        let secret = &variable["valueFrom"]["secretKeyRef"];
        assert!(
            secret["name"].as_str().is_some(),
            "{key} comes from a Secret"
        );
    }
    // Staging for uploads needs a writable /tmp under a read-only root file system.
    let mounts = container["volumeMounts"].as_sequence().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"].as_str() == Some("/tmp"))
    );
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
}

#[test]
fn slurm_array_matches_its_shard_count() {
    let script = read("deploy/slurm-weekly.sh");
    assert!(script.starts_with("#!/bin/bash"));
    let array = script
        .lines()
        .find_map(|line| line.strip_prefix("#SBATCH --array=0-"))
        .unwrap();
    let last: u64 = array.trim().parse().unwrap();
    let shards: u64 = script
        .lines()
        .find_map(|line| line.strip_prefix("SHARDS="))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(last + 1, shards);
    assert!(script.contains("--shard \"$SHARDS\""));
    assert!(script.contains("part-{shard}.parquet"));
    assert!(script.contains("--resume"));
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(format!(
            "{}/deploy/slurm-weekly.sh",
            env!("CARGO_MANIFEST_DIR")
        ))
        .status();
    if let Ok(status) = syntax {
        assert!(status.success(), "bash -n deploy/slurm-weekly.sh");
    }
}

#[test]
fn containerfile_is_multi_stage_non_root_with_the_binary_as_command() {
    let containerfile = read("Containerfile");
    let stages: Vec<&str> = containerfile
        .lines()
        .filter(|line| line.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages[0].contains("docker.io/library/rust:") && stages[0].ends_with(" AS build"));
    assert!(containerfile.contains("cargo build --release --locked"));
    assert!(containerfile.contains("COPY --from=build"));
    assert!(containerfile.contains("USER 65532"));
    assert!(containerfile.contains("ENTRYPOINT [\"/usr/local/bin/mta-sts-scan\"]"));
    // Every file the release build reads is copied in.
    let copied: Vec<&str> = containerfile
        .lines()
        .filter(|line| line.starts_with("COPY ") && !line.contains("--from"))
        .flat_map(|line| line.split_whitespace().skip(1))
        .collect();
    for path in ["Cargo.toml", "Cargo.lock", "src", "benches", "sample-data"] {
        assert!(copied.contains(&path), "{path} is not copied: {copied:?}");
    }
    let ignored = read(".containerignore");
    assert!(ignored.lines().any(|line| line == "target"));
}

#[test]
fn readme_shows_the_cronjob_and_the_container_build() {
    let readme = read("README.md");
    let manifest = read("deploy/k8s-weekly-s3-cronjob.yaml");
    assert!(
        readme.contains(manifest.trim_end()),
        "README.md must include deploy/k8s-weekly-s3-cronjob.yaml verbatim"
    );
    assert!(readme.contains("podman build"));
    assert!(readme.contains("mta-sts-scan diff"));
}
