//! The Kubernetes Indexed Job in `deploy/` must be a valid Job that scans N shards with N pods, and
//! the README must show it verbatim, so the two cannot drift apart.

use serde_norway::Value;

const MANIFEST_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/k8s-indexed-job.yaml");

fn manifest_text() -> String {
    std::fs::read_to_string(MANIFEST_PATH).unwrap()
}

fn manifest() -> Value {
    serde_norway::from_str(&manifest_text()).unwrap()
}

fn integer(value: &Value, what: &str) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value:?}"))
}

fn strings(value: &Value, what: &str) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("{what} is not a list: {value:?}"))
        .iter()
        .map(|item| match item {
            Value::String(text) => text.clone(),
            other => panic!("{what} holds a non-string {other:?}: quote it"),
        })
        .collect()
}

/// The value after `flag` in `args`.
fn flag_value<'a>(args: &'a [String], flag: &str) -> &'a str {
    let position = args
        .iter()
        .position(|arg| arg == flag)
        .unwrap_or_else(|| panic!("args lack {flag}: {args:?}"));
    args.get(position + 1)
        .unwrap_or_else(|| panic!("{flag} has no value: {args:?}"))
}

#[test]
fn manifest_is_an_indexed_job_with_one_pod_per_shard() {
    let job = manifest();
    assert_eq!(job["apiVersion"].as_str(), Some("batch/v1"));
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let completions = integer(&spec["completions"], "completions");
    let parallelism = integer(&spec["parallelism"], "parallelism");
    assert_eq!(completions, parallelism);

    let pod = &spec["template"]["spec"];
    assert!(
        matches!(pod["restartPolicy"].as_str(), Some("Never" | "OnFailure")),
        "a Job's pods need restartPolicy Never or OnFailure"
    );
    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let command = strings(&container["command"], "command");
    assert_eq!(command, ["mta-sts-scan"]);
    let args = strings(&container["args"], "args");
    assert_eq!(args[0], "scan");

    // `--shard N` (K comes from JOB_COMPLETION_INDEX): N must equal the number of pods.
    let shards: u64 = flag_value(&args, "--shard")
        .parse()
        .expect("--shard takes N alone in an Indexed Job");
    assert_eq!(shards, completions);
    let output = flag_value(&args, "-o");
    assert!(output.ends_with(".parquet"), "{output}");
    assert_eq!(flag_value(&args, "--log-format"), "json");

    // The input and the output live on mounted volumes.
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|mount| mount["mountPath"].as_str())
        .collect();
    let input = &args[1];
    for path in [input.as_str(), output, flag_value(&args, "--summary")] {
        assert!(
            mounts
                .iter()
                .any(|mount| path.starts_with(&format!("{mount}/"))),
            "{path} is on no volume ({mounts:?})"
        );
    }
    let volumes: Vec<&str> = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|volume| volume["name"].as_str())
        .collect();
    for mount in container["volumeMounts"].as_sequence().unwrap() {
        let name = mount["name"].as_str().unwrap();
        assert!(volumes.contains(&name), "volume {name} is not declared");
    }

    // Settings come from the environment variables the binary reads.
    let env: Vec<&str> = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|variable| variable["name"].as_str())
        .collect();
    assert!(env.contains(&"MTA_STS_SCAN_RESOLVER"), "{env:?}");
    for name in &env {
        assert!(name.starts_with("MTA_STS_SCAN_"), "{name}");
    }
}

#[test]
fn readme_shows_the_manifest_verbatim() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = format!("```yaml\n{}```\n", manifest_text());
    assert!(
        readme.contains(&block),
        "README.md must show deploy/k8s-indexed-job.yaml verbatim in a yaml block:\n\n{block}"
    );
}

/// Runs the manifest's command line as pod 3 would, with the paths moved to a temporary
/// directory and an input of non-domains only (so nothing is looked up): the flags and the
/// environment must be ones the binary accepts, and the shard files must get pod 3's names.
#[test]
fn the_manifest_command_line_runs_as_pod_3() {
    let job = manifest();
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let command = strings(&container["command"], "command");
    let args = strings(&container["args"], "args");
    assert_eq!(command, ["mta-sts-scan"]);
    let dir = tempfile::tempdir().unwrap();
    let moved = |path: &str| -> String {
        let name = std::path::Path::new(path).file_name().unwrap();
        dir.path().join(name).display().to_string()
    };
    let input = moved(&args[1]);
    std::fs::write(&input, "not a domain\nalso not one\n").unwrap();
    let args: Vec<String> = args
        .iter()
        .map(|arg| {
            if arg.starts_with('/') {
                moved(arg)
            } else {
                arg.clone()
            }
        })
        .collect();
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_mta-sts-scan"));
    run.args(&args).env_clear().env("JOB_COMPLETION_INDEX", "3");
    for variable in container["env"].as_sequence().unwrap() {
        let name = variable["name"].as_str().unwrap();
        let value = variable["value"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: quote the value"));
        run.env(name, value);
    }
    let output = run.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    for line in stderr.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|error| panic!("stderr line is not JSON ({error}): {line}"));
    }
    assert!(dir.path().join("results.shard-3-of-8.parquet").exists());
    assert!(dir.path().join("summary.shard-3-of-8.json").exists());
}
