//! The deployment artefacts in `ops/` and `docker/` agree with each other and
//! with the worker: Kubernetes manifests as typed objects, the compose stack,
//! alert rules, runbooks, dashboards and metric names.

// Test support code panics on setup failures by design.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "common/ops_files.rs"]
mod ops_files;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Probe, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde_yaml::Value;

use ops_files::{SPEC_METRICS, expressions, files, metric_names, repo};

/// The Prometheus Operator's ServiceMonitor, as far as these checks read it.
#[derive(Debug, Deserialize)]
struct ServiceMonitor {
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec: ServiceMonitorSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceMonitorSpec {
    selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    namespace_selector: NamespaceSelector,
    endpoints: Vec<Endpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NamespaceSelector {
    match_names: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Endpoint {
    port: String,
    path: String,
}

fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .collect()
}

fn one<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let mut docs = documents(file);
    assert_eq!(docs.len(), 1, "{file} holds one object");
    serde_yaml::from_value(docs.remove(0)).unwrap()
}

fn many<T: serde::de::DeserializeOwned>(file: &str) -> Vec<T> {
    documents(file)
        .into_iter()
        .map(|doc| serde_yaml::from_value(doc).unwrap())
        .collect()
}

/// The worker's default shutdown grace period, from its own help text.
fn worker_default_grace_seconds() -> u64 {
    let output = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["worker", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    let line = help
        .lines()
        .find(|l| l.contains("waits for running activities on shutdown"))
        .unwrap_or_else(|| panic!("no grace period in the help:\n{help}"));
    let default = line.split("[default: ").nth(1).unwrap();
    default.trim_end_matches(']').trim().parse().unwrap()
}

/// Seconds the worker waits past the grace period before it gives up
/// (`SHUTDOWN_MARGIN` in worker/src/worker.rs).
const SHUTDOWN_MARGIN_SECONDS: u64 = 10;

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn worker_container(deployment: &Deployment) -> Container {
    let pod = deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    pod.containers
        .iter()
        .find(|c| c.name == "worker")
        .unwrap()
        .clone()
}

fn probe_target(probe: &Option<Probe>) -> (String, IntOrString) {
    let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
    (get.path.clone().unwrap(), get.port.clone())
}

#[test]
fn kubernetes_selectors_ports_and_probes_line_up_with_the_worker() {
    let deployment: Deployment = one("ops/k8s/deployment.yaml");
    let service: Service = one("ops/k8s/service.yaml");
    let monitor: ServiceMonitor = one("ops/k8s/servicemonitor.yaml");
    let budget: PodDisruptionBudget = one("ops/k8s/pdb.yaml");
    let autoscaler: HorizontalPodAutoscaler = one("ops/k8s/hpa.yaml");

    let spec = deployment.spec.as_ref().unwrap();
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    let deployment_selector = spec.selector.match_labels.clone().unwrap();
    assert!(selects(&deployment_selector, &pod_labels));
    let service_spec = service.spec.as_ref().unwrap();
    assert!(selects(
        service_spec.selector.as_ref().unwrap(),
        &pod_labels
    ));
    let budget_selector = budget.spec.as_ref().unwrap().selector.as_ref().unwrap();
    assert!(selects(
        budget_selector.match_labels.as_ref().unwrap(),
        &pod_labels
    ));
    let service_labels = service.metadata.labels.clone().unwrap();
    assert!(selects(
        monitor.spec.selector.match_labels.as_ref().unwrap(),
        &service_labels
    ));
    let namespace = deployment.metadata.namespace.clone().unwrap();
    assert_eq!(service.metadata.namespace.as_ref(), Some(&namespace));
    assert_eq!(
        monitor.spec.namespace_selector.match_names,
        std::slice::from_ref(&namespace)
    );
    // The job label is the Service name; the alert rules select on it.
    assert_eq!(service.metadata.name.as_deref(), Some("handoff-worker"));
    assert_eq!(monitor.metadata.name.as_deref(), Some("handoff-worker"));

    let target = &autoscaler.spec.as_ref().unwrap().scale_target_ref;
    assert_eq!(
        (target.kind.as_str(), Some(&target.name)),
        ("Deployment", deployment.metadata.name.as_ref())
    );
    let autoscaler_spec = autoscaler.spec.as_ref().unwrap();
    assert!(
        autoscaler_spec.min_replicas.unwrap() >= 2,
        "timers need a live poller"
    );
    assert!(spec.replicas.unwrap() >= 2);

    // Ports: container `metrics` = HANDOFF_METRICS_ADDR's port = Service target = monitor port.
    let container = worker_container(&deployment);
    let metrics_port = container
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .find(|p| p.name.as_deref() == Some("metrics"))
        .unwrap()
        .container_port;
    let config: Vec<ConfigMap> = many("ops/k8s/configmap.yaml");
    let settings = config
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("handoff-worker"))
        .unwrap()
        .data
        .clone()
        .unwrap();
    let addr = &settings["HANDOFF_METRICS_ADDR"];
    assert!(
        addr.starts_with("0.0.0.0:"),
        "the probes reach the pod IP, not loopback: {addr}"
    );
    assert_eq!(addr.rsplit(':').next().unwrap(), metrics_port.to_string());
    let service_port = &service_spec.ports.as_ref().unwrap()[0];
    assert_eq!(
        service_port.target_port,
        Some(IntOrString::String("metrics".into()))
    );
    assert_eq!(
        monitor.spec.endpoints[0].port,
        service_port.name.clone().unwrap()
    );
    assert_eq!(monitor.spec.endpoints[0].path, "/metrics");

    // Probes on the worker's real paths (the e2e tests call them on a live worker).
    let metrics = IntOrString::String("metrics".into());
    assert_eq!(
        probe_target(&container.liveness_probe),
        ("/healthz".to_owned(), metrics.clone())
    );
    assert_eq!(
        probe_target(&container.readiness_probe),
        ("/readyz".to_owned(), metrics.clone())
    );
    assert_eq!(
        probe_target(&container.startup_probe),
        ("/healthz".to_owned(), metrics)
    );

    // SIGKILL only after the worker's own grace period and its margin.
    let grace: u64 = settings["HANDOFF_SHUTDOWN_GRACE_SECONDS"].parse().unwrap();
    assert_eq!(grace, worker_default_grace_seconds());
    let pod = spec.template.spec.as_ref().unwrap();
    let termination = pod.termination_grace_period_seconds.unwrap() as u64;
    assert!(
        termination > grace + SHUTDOWN_MARGIN_SECONDS,
        "{termination}s"
    );
}

#[test]
fn kubernetes_pods_run_unprivileged_with_limits_and_their_configuration_exists() {
    let deployment: Deployment = one("ops/k8s/deployment.yaml");
    let pod = deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .clone()
        .unwrap();
    let container = worker_container(&deployment);

    let pod_security = pod.security_context.unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert!(pod_security.run_as_user.unwrap() > 0);
    let security = container.security_context.clone().unwrap();
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    let resources = container.resources.clone().unwrap();
    for key in ["cpu", "memory"] {
        assert!(resources.requests.as_ref().unwrap().contains_key(key));
        assert!(resources.limits.as_ref().unwrap().contains_key(key));
    }

    let config_maps: Vec<ConfigMap> = many("ops/k8s/configmap.yaml");
    let secrets: Vec<Secret> = many("ops/k8s/secrets.yaml");
    let config_names: BTreeSet<String> = config_maps
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    let secret_keys: BTreeMap<String, BTreeSet<String>> = secrets
        .iter()
        .map(|s| {
            let keys = s
                .string_data
                .clone()
                .unwrap_or_default()
                .into_keys()
                .collect();
            (s.metadata.name.clone().unwrap(), keys)
        })
        .collect();
    for source in container.env_from.as_ref().unwrap() {
        if let Some(map) = &source.config_map_ref {
            assert!(config_names.contains(&map.name), "{}", map.name);
        }
        if let Some(secret) = &source.secret_ref {
            assert!(secret_keys.contains_key(&secret.name), "{}", secret.name);
        }
    }
    for var in container.env.as_ref().unwrap() {
        let from = var
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .unwrap();
        assert!(
            secret_keys[&from.name].contains(&from.key),
            "{}/{}",
            from.name,
            from.key
        );
    }
    assert!(
        container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .any(|v| v.name == "TEMPORAL_API_KEY"),
        "the Temporal API key comes from a Secret"
    );

    // The playbook volume mounts a copy of every file of playbooks/, and
    // the directory it makes passes the worker's start-up check.
    let playbooks = config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("handoff-playbooks"))
        .unwrap();
    let data = playbooks.data.clone().unwrap();
    let volume = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "playbooks")
        .unwrap();
    let mounted = tempfile::tempdir().unwrap();
    let mut paths = BTreeSet::new();
    for item in volume.config_map.unwrap().items.unwrap() {
        let text = &data[&item.key];
        let shipped = std::fs::read_to_string(repo().join("playbooks").join(&item.path));
        assert_eq!(Some(text), shipped.ok().as_ref(), "{} is stale", item.key);
        let target = mounted.path().join(&item.path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, text).unwrap();
        paths.insert(item.path);
    }
    let mut shipped = BTreeSet::new();
    for dir in ["", "calendars/"] {
        for entry in std::fs::read_dir(repo().join("playbooks").join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".toml") {
                shipped.insert(format!("{dir}{name}"));
            }
        }
    }
    assert_eq!(paths, shipped, "the ConfigMap mounts every playbook file");
    let set = handoff_activities::playbooks::PlaybookSet::load_with(mounted.path(), None)
        .unwrap_or_else(|e| panic!("{e}: {:?}", e.problems));
    assert!(
        set.builtin_segments().is_empty(),
        "every segment comes from a file"
    );
    assert!(set.directory.is_some());
}

fn compose() -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(repo().join("docker/compose.yaml")).unwrap())
        .unwrap()
}

fn env<'a>(service: &'a Value, name: &str) -> &'a str {
    service["environment"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {service:?}"))
}

/// Container ports a service publishes.
fn container_ports(service: &Value) -> Vec<String> {
    service["ports"]
        .as_sequence()
        .map(|ports| {
            ports
                .iter()
                .map(|p| p.as_str().unwrap().rsplit(':').next().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_compose_stack_wires_services_ports_and_mounted_files() {
    let compose = compose();
    let services = compose["services"].as_mapping().unwrap();
    let names: BTreeSet<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    for needed in [
        "postgresql",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "worker",
        "prometheus",
        "grafana",
    ] {
        assert!(names.contains(needed), "no {needed} service");
    }
    let service = |name: &str| &compose["services"][name];

    // Images are pinned; only the worker is built here.
    for (name, definition) in services {
        let name = name.as_str().unwrap();
        let image = definition["image"].as_str().unwrap();
        let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest",
            "{name}: {image} is not pinned"
        );
        for dependency in definition["depends_on"]
            .as_mapping()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_else(|| {
                definition["depends_on"]
                    .as_sequence()
                    .cloned()
                    .unwrap_or_default()
            })
        {
            assert!(
                names.contains(dependency.as_str().unwrap()),
                "{name} depends on a missing service"
            );
        }
    }
    assert_eq!(
        service("worker")["build"]["dockerfile"].as_str(),
        Some("docker/Dockerfile")
    );

    // Temporal on PostgreSQL; the UI, the setup job and the worker on Temporal.
    assert_eq!(env(service("temporal"), "POSTGRES_SEEDS"), "postgresql");
    let temporal_port = container_ports(service("temporal"))[0].clone();
    for client in ["temporal-ui", "temporal-setup", "worker"] {
        assert_eq!(
            env(service(client), "TEMPORAL_ADDRESS"),
            format!("temporal:{temporal_port}")
        );
    }

    // The worker's listener is published, and Prometheus scrapes it as the
    // job the alert rules select.
    let metrics_port = env(service("worker"), "HANDOFF_METRICS_ADDR")
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    assert!(env(service("worker"), "HANDOFF_METRICS_ADDR").starts_with("0.0.0.0:"));
    assert!(container_ports(service("worker")).contains(&metrics_port));
    let grace: u64 = env(service("worker"), "HANDOFF_SHUTDOWN_GRACE_SECONDS")
        .parse()
        .unwrap();
    let stop: u64 = service("worker")["stop_grace_period"]
        .as_str()
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!(stop > grace + SHUTDOWN_MARGIN_SECONDS);

    // Every bind mount names a file or directory of the repository, and the
    // mounted configuration refers to what is mounted.
    let mut mounts = BTreeMap::new();
    for (name, definition) in services {
        let name = name.as_str().unwrap();
        for volume in definition["volumes"]
            .as_sequence()
            .cloned()
            .unwrap_or_default()
        {
            let volume = volume.as_str().unwrap().to_owned();
            let mut parts = volume.split(':');
            let (source, target) = (parts.next().unwrap(), parts.next().unwrap());
            if source.starts_with('.') {
                let path = repo().join("docker").join(source);
                assert!(path.exists(), "{name} mounts missing {source}");
                mounts.insert(target.to_owned(), path);
            }
        }
    }
    let prometheus: Value = serde_yaml::from_str(
        &std::fs::read_to_string(&mounts["/etc/prometheus/prometheus.yml"]).unwrap(),
    )
    .unwrap();
    let job = &prometheus["scrape_configs"][0];
    assert_eq!(job["job_name"].as_str(), Some("handoff-worker"));
    assert_eq!(
        job["static_configs"][0]["targets"][0].as_str(),
        Some(format!("worker:{metrics_port}").as_str())
    );
    let rules = prometheus["rule_files"][0].as_str().unwrap();
    let (rules_dir, pattern) = rules.rsplit_once('/').unwrap();
    let suffix = pattern.trim_start_matches('*');
    assert!(
        !files(&mounts[rules_dir], suffix).is_empty(),
        "{rules} matches no rule file"
    );
    let provisioning = &mounts["/etc/grafana/provisioning"];
    let providers: Value = serde_yaml::from_str(
        &std::fs::read_to_string(provisioning.join("dashboards/handoff.yaml")).unwrap(),
    )
    .unwrap();
    let dashboards = providers["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    assert_eq!(files(&mounts[dashboards], ".json").len(), 2);
    let home = env(
        service("grafana"),
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH",
    );
    let (home_dir, home_file) = home.rsplit_once('/').unwrap();
    assert!(mounts[home_dir].join(home_file).is_file());
    let sources: Value = serde_yaml::from_str(
        &std::fs::read_to_string(provisioning.join("datasources/prometheus.yaml")).unwrap(),
    )
    .unwrap();
    let url = sources["datasources"][0]["url"].as_str().unwrap();
    let prometheus_port = container_ports(service("prometheus"))[0].clone();
    assert_eq!(url, format!("http://prometheus:{prometheus_port}"));
}

#[test]
fn every_alert_has_a_runbook_and_every_runbook_an_alert() {
    let mut alerts = BTreeSet::new();
    for file in files(&repo().join("ops/prometheus"), ".rules.yaml") {
        let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for rule in doc["groups"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_sequence().unwrap())
        {
            let alert = rule["alert"].as_str().unwrap().to_owned();
            let runbook = rule["annotations"]["runbook"].as_str().unwrap();
            assert_eq!(runbook, format!("ops/runbooks/{alert}.md"));
            assert!(repo().join(runbook).is_file(), "{runbook}");
            assert!(matches!(
                rule["labels"]["severity"].as_str(),
                Some("critical" | "warning")
            ));
            alerts.insert(alert);
        }
    }
    let runbooks: BTreeSet<String> = files(&repo().join("ops/runbooks"), ".md")
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(alerts, runbooks);
}

#[test]
fn dashboards_query_something_and_only_known_metric_families() {
    let exprs = expressions();
    assert!(exprs.len() > 20, "{} expressions", exprs.len());
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{expr} reads no worker metric");
        for name in names.iter().filter(|n| n.starts_with("handoff_")) {
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                SPEC_METRICS.contains(&family),
                "{name} in {expr} is not a SPEC §9 metric"
            );
        }
    }
}

/// The receiver's own families on its own `/metrics`: SPEC §10 asks the
/// ingress to account for every request (accepted, duplicate, late, refused),
/// which §9's worker families cannot express.
const INGRESS_METRICS: [&str; 5] = [
    "handoff_ingress_requests_total",
    "handoff_ingress_signature_failures_total",
    "handoff_ingress_duplicates_total",
    "handoff_ingress_late_events_total",
    "handoff_ingress_unknown_stages_total",
];

/// A `handoff_*` word that looks like a metric: it carries a Prometheus
/// suffix, or it is one of the SPEC's suffix-less gauges.
fn metric_like(word: &str) -> bool {
    const SUFFIXES: [&str; 10] = [
        "_total", "_seconds", "_bucket", "_sum", "_count", "_bytes", "_ratio", "_info", "_24h",
        "_created",
    ];
    SUFFIXES.iter().any(|s| word.ends_with(s)) || SPEC_METRICS.contains(&word)
}

#[test]
fn no_handoff_metric_outside_the_spec_is_named_anywhere() {
    let listed = Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(repo())
        .output()
        .unwrap();
    let mut offenders = BTreeSet::new();
    for file in String::from_utf8(listed.stdout).unwrap().lines() {
        let Ok(text) = std::fs::read_to_string(repo().join(file)) else {
            continue;
        };
        let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        for word in words.filter(|w| w.starts_with("handoff_") && metric_like(w)) {
            let family = word
                .strip_suffix("_bucket")
                .or_else(|| word.strip_suffix("_sum"))
                .or_else(|| word.strip_suffix("_count"))
                .unwrap_or(word);
            if !SPEC_METRICS.contains(&family) && !INGRESS_METRICS.contains(&family) {
                offenders.insert(format!("{file}: {word}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "metric names outside SPEC §9: {offenders:#?}"
    );
    assert!(Path::new(&repo().join("ops")).is_dir());
}
