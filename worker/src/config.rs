//! Settings, resolved once at start-up: flag > `HANDOFF_*` > `handoff.toml` > default.
//!
//! The Temporal connection is not here: it comes from the SDK's envconfig
//! (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `temporal.toml`, ...).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use handoff_activities::ledger::DEFAULT_DATABASE_URL;
use handoff_activities::render::KINDS;
use handoff_activities::sinks::{Channel, HttpSink, Routes, Sinks, SmtpConfig, SmtpSink, SmtpTls};
use handoff_workflows::playbook::{Band, SEGMENTS, SegmentBands};

use crate::cli::{LogFormat, SettingsArgs, SmtpTlsArg, VersioningArg};
use crate::codec::Keys;
use crate::exit::Exit;

/// Default task queue.
pub(crate) const DEFAULT_TASK_QUEUE: &str = "revenue-handoff";
/// Default metrics listen address.
pub(crate) const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";
/// Default seconds one send to a sink may take.
const DEFAULT_SINK_TIMEOUT_SECONDS: u64 = 10;
/// Workflows cached by default: the SDK's default, which the benchmark's
/// memory per cached handoff shows is small (see the README's Performance).
const DEFAULT_MAX_CACHED_WORKFLOWS: usize = 1000;
/// Config file read when `--config` is not given and it exists.
const DEFAULT_CONFIG_FILE: &str = "handoff.toml";

/// Every setting of the process, typed and validated.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) task_queue: String,
    pub(crate) database_url: String,
    pub(crate) metrics_addr: SocketAddr,
    /// Handle owning roles a bundle leaves empty; `None` takes the owner
    /// directory's, else `revops-queue`.
    pub(crate) fallback_owner: Option<String>,
    pub(crate) time_scale: u32,
    /// Directory of playbooks, the owner directory and holiday calendars.
    pub(crate) playbook_dir: PathBuf,
    /// Payload encryption keys, when payloads are encrypted.
    pub(crate) codec_keys: Option<Keys>,
    /// Owner directory file, when not `directory.toml` in `playbook_dir`.
    pub(crate) directory_file: Option<PathBuf>,
    /// Where tasks and notifications go.
    pub(crate) sinks: SinkSettings,
    /// History length at which new handoffs continue as new; `None` keeps the workflow's default.
    pub(crate) max_history_events: Option<u32>,
    /// Days after a handoff ended that the ledger keeps its personal data;
    /// `None` keeps it forever. At least 1.
    pub(crate) ledger_retention_days: Option<u32>,
    pub(crate) shutdown_grace: Duration,
    /// Worker Versioning, when a deployment name is set.
    pub(crate) versioning: Option<Versioning>,
    /// Workflows kept in the worker's cache.
    pub(crate) max_cached_workflows: usize,
    pub(crate) log_format: Option<LogFormat>,
    /// CRM stage names that mean closed won, compared case-insensitively.
    pub(crate) won_stages: Vec<String>,
    /// HubSpot pipeline stage ids (lower case) and what each means.
    pub(crate) hubspot_stages: BTreeMap<String, StageKind>,
    /// `handoff ingress` settings that may live in the file.
    pub(crate) ingress: IngressFileConfig,
    pub(crate) bands: SegmentBands,
}

/// The worker's place in a Worker Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Versioning {
    pub(crate) deployment_name: String,
    pub(crate) build_id: String,
    pub(crate) behavior: VersioningArg,
}

/// `handoff.toml` as written. Unknown keys are errors, so typos surface.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    task_queue: Option<String>,
    database_url: Option<String>,
    metrics_addr: Option<SocketAddr>,
    fallback_owner: Option<String>,
    time_scale: Option<u32>,
    max_history_events: Option<u32>,
    ledger_retention_days: Option<u32>,
    playbook_dir: Option<PathBuf>,
    directory_file: Option<PathBuf>,
    shutdown_grace_seconds: Option<u64>,
    max_cached_workflows: Option<usize>,
    deployment_name: Option<String>,
    build_id: Option<String>,
    versioning_behavior: Option<VersioningArg>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    crm: CrmConfig,
    #[serde(default)]
    ingress: IngressFileConfig,
    #[serde(default)]
    sinks: SinksConfig,
    #[serde(default)]
    segments: SegmentsConfig,
}

/// `[sinks]` of `handoff.toml`. Secrets are not read from the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinksConfig {
    timeout_seconds: Option<u64>,
    #[serde(default)]
    webhook: WebhookConfig,
    #[serde(default)]
    slack: SlackConfig,
    #[serde(default)]
    smtp: SmtpFileConfig,
    /// `tasks`, `default` or a notification kind → channel names.
    routes: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookConfig {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlackConfig {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmtpFileConfig {
    host: Option<String>,
    port: Option<u16>,
    tls: Option<SmtpTlsArg>,
    username: Option<String>,
    from: Option<String>,
}

/// Resolved sink settings; the clients are built by [`SinkSettings::build`].
#[derive(Debug, Clone, Default)]
pub(crate) struct SinkSettings {
    pub(crate) webhook_url: Option<String>,
    pub(crate) webhook_secret: Option<String>,
    pub(crate) slack_url: Option<String>,
    pub(crate) smtp: Option<SmtpConfig>,
    pub(crate) timeout: Duration,
    pub(crate) routes: Option<BTreeMap<String, Vec<String>>>,
}

impl SinkSettings {
    /// Builds the sink clients and checks the routes.
    pub(crate) fn build(&self) -> anyhow::Result<Sinks> {
        let mut sinks = Sinks::default();
        if let Some(url) = &self.webhook_url {
            sinks.webhook = Some(
                HttpSink::try_new(url, self.webhook_secret.clone(), self.timeout)
                    .map_err(|e| Exit::config(format!("webhook sink: {e}")))?,
            );
        }
        if let Some(url) = &self.slack_url {
            sinks.slack =
                Some(HttpSink::try_new(url, None, self.timeout).map_err(|_| {
                    Exit::config("slack sink: the webhook URL is not an http(s) URL")
                })?);
        }
        if let Some(smtp) = &self.smtp {
            sinks.email = Some(
                SmtpSink::try_new(smtp).map_err(|e| Exit::config(format!("smtp sink: {e:#}")))?,
            );
        }
        sinks.routes = match &self.routes {
            Some(routes) => resolve_routes(routes, &sinks)?,
            None => sinks.default_routes(),
        };
        Ok(sinks)
    }

    /// The configured channels, for the start-up log (no secrets).
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.webhook_url.is_some() {
            let signed = if self.webhook_secret.is_some() {
                "signed"
            } else {
                "unsigned"
            };
            parts.push(format!("webhook ({signed})"));
        }
        if self.slack_url.is_some() {
            parts.push("slack".to_owned());
        }
        if let Some(smtp) = &self.smtp {
            parts.push(format!("email via {}:{}", smtp.host, smtp.port));
        }
        if parts.is_empty() {
            "none (the ledger only)".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

fn resolve_routes(config: &BTreeMap<String, Vec<String>>, sinks: &Sinks) -> anyhow::Result<Routes> {
    let mut routes = sinks.default_routes();
    for (name, channels) in config {
        let mut resolved = Vec::new();
        for channel in channels {
            let Some(channel) = Channel::from_name(channel) else {
                return Err(Exit::config(format!(
                    "sinks.routes.{name}: unknown channel {channel:?}; use webhook, slack or email"
                )));
            };
            if !sinks.has(channel) {
                return Err(Exit::config(format!(
                    "sinks.routes.{name}: the {channel} sink is not configured"
                )));
            }
            resolved.push(channel);
        }
        match name.as_str() {
            "tasks" => {
                if resolved.iter().any(|c| *c != Channel::Webhook) {
                    return Err(Exit::config(
                        "sinks.routes.tasks: tasks go to the webhook only",
                    ));
                }
                routes.tasks = resolved;
            }
            "default" => routes.notifications = resolved,
            kind if KINDS.contains(&kind) => {
                routes.by_kind.insert(kind.to_owned(), resolved);
            }
            other => {
                return Err(Exit::config(format!(
                    "sinks.routes.{other}: not tasks, default or a notification kind ({})",
                    KINDS.join(", ")
                )));
            }
        }
    }
    Ok(routes)
}

fn resolve_sinks(args: &crate::cli::SinkArgs, file: SinksConfig) -> anyhow::Result<SinkSettings> {
    let timeout = Duration::from_secs(
        args.sink_timeout_seconds
            .or(file.timeout_seconds)
            .unwrap_or(DEFAULT_SINK_TIMEOUT_SECONDS)
            .max(1),
    );
    let smtp = match args.smtp_host.clone().or(file.smtp.host) {
        None => None,
        Some(host) => {
            let tls = match args.smtp_tls.or(file.smtp.tls) {
                Some(SmtpTlsArg::None) => SmtpTls::None,
                Some(SmtpTlsArg::Tls) => SmtpTls::Tls,
                Some(SmtpTlsArg::Starttls) | None => SmtpTls::Starttls,
            };
            let default_port = match tls {
                SmtpTls::None => 25,
                SmtpTls::Starttls => 587,
                SmtpTls::Tls => 465,
            };
            let from = args.smtp_from.clone().or(file.smtp.from).ok_or_else(|| {
                Exit::config("smtp: a sender is required (--smtp-from, HANDOFF_SMTP_FROM or sinks.smtp.from)")
            })?;
            let username = args.smtp_username.clone().or(file.smtp.username);
            let credentials = match (username, args.smtp_password.clone()) {
                (Some(user), Some(password)) => Some((user, password)),
                (Some(_), None) => {
                    return Err(Exit::config(
                        "smtp: a user name without HANDOFF_SMTP_PASSWORD",
                    ));
                }
                (None, _) => None,
            };
            Some(SmtpConfig {
                host,
                port: args.smtp_port.or(file.smtp.port).unwrap_or(default_port),
                tls,
                credentials,
                from,
                timeout,
            })
        }
    };
    Ok(SinkSettings {
        webhook_url: args.webhook_url.clone().or(file.webhook.url),
        webhook_secret: args.webhook_secret.clone(),
        slack_url: args.slack_webhook_url.clone().or(file.slack.url),
        smtp,
        timeout,
        routes: file.routes,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CrmConfig {
    /// Stage catalog: names that mean closed won.
    won_stages: Option<Vec<String>>,
    /// HubSpot stage catalog: stage id → `won`, `lost` or `open`; merged
    /// over the default pipeline's stages.
    hubspot_stages: Option<BTreeMap<String, StageKind>>,
}

/// What a CRM pipeline stage means for a handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StageKind {
    /// Closed won: the handoff starts or gets the bundle.
    Won,
    /// Closed lost: the handoff is cancelled.
    Lost,
    /// Still being sold: a handoff in flight is paused as reopened.
    Open,
}

/// The stages of HubSpot's default deal pipeline; a portal's own pipelines
/// add theirs under `[crm.hubspot_stages]`.
const DEFAULT_HUBSPOT_STAGES: [(&str, StageKind); 7] = [
    ("appointmentscheduled", StageKind::Open),
    ("qualifiedtobuy", StageKind::Open),
    ("presentationscheduled", StageKind::Open),
    ("decisionmakerboughtin", StageKind::Open),
    ("contractsent", StageKind::Open),
    ("closedwon", StageKind::Won),
    ("closedlost", StageKind::Lost),
];

/// `[ingress]` of `handoff.toml`; its secrets come from the environment only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngressFileConfig {
    /// Listen address of `handoff ingress`.
    pub(crate) addr: Option<SocketAddr>,
    /// The address the CRMs call, covered by HubSpot's v3 signatures.
    pub(crate) public_url: Option<String>,
    /// Base URL of the HubSpot CRM API.
    pub(crate) hubspot_api_url: Option<String>,
    /// The HubSpot portal (account) whose events are taken; others are ignored.
    pub(crate) hubspot_portal_id: Option<u64>,
    /// Salesforce organisation id whose Outbound Messages are accepted.
    pub(crate) salesforce_org_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentsConfig {
    default: Option<String>,
    /// Currency → thresholds; replaces the built-in bands when given.
    bands: Option<BTreeMap<String, Band>>,
}

impl Settings {
    /// Resolves the settings from flags and environment (already merged by clap) and the file.
    pub(crate) fn load(args: &SettingsArgs) -> anyhow::Result<Self> {
        let mut file = read_file(args.config.as_deref())?;
        let versioning = versioning(args, &mut file)?;
        let bands = resolve_bands(std::mem::take(&mut file.segments))?;
        let sinks = resolve_sinks(&args.sinks, std::mem::take(&mut file.sinks))?;
        let time_scale = args.time_scale.or(file.time_scale).unwrap_or(1);
        if time_scale == 0 {
            return Err(Exit::config("time scale must be at least 1"));
        }
        let task_queue = args
            .task_queue
            .clone()
            .or(file.task_queue)
            .unwrap_or_else(|| DEFAULT_TASK_QUEUE.to_owned());
        if args.max_history_events.or(file.max_history_events) == Some(0) {
            return Err(Exit::config("max history events must be at least 1"));
        }
        let ledger_retention_days = args.ledger_retention_days.or(file.ledger_retention_days);
        if ledger_retention_days == Some(0) {
            return Err(Exit::config(
                "ledger retention days must be at least 1; leave it unset to keep personal data",
            ));
        }
        if task_queue.trim().is_empty() || task_queue.contains(['\'', '"']) {
            return Err(Exit::config(
                "task queue must not be empty or contain quotes",
            ));
        }
        Ok(Self {
            versioning,
            max_cached_workflows: args
                .max_cached_workflows
                .or(file.max_cached_workflows)
                .unwrap_or(DEFAULT_MAX_CACHED_WORKFLOWS),
            task_queue,
            database_url: args
                .database_url
                .clone()
                .or(file.database_url)
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            metrics_addr: args.metrics_addr.or(file.metrics_addr).unwrap_or_else(|| {
                DEFAULT_METRICS_ADDR
                    .parse()
                    .expect("the default address parses")
            }),
            fallback_owner: args.fallback_owner.clone().or(file.fallback_owner),
            time_scale,
            max_history_events: args.max_history_events.or(file.max_history_events),
            ledger_retention_days,
            codec_keys: args
                .codec_keys
                .as_deref()
                .map(Keys::parse)
                .transpose()
                .map_err(|e| Exit::config(e.to_string()))?,
            playbook_dir: args
                .playbook_dir
                .clone()
                .or(file.playbook_dir)
                .unwrap_or_else(|| PathBuf::from("playbooks")),
            directory_file: args.directory_file.clone().or(file.directory_file),
            sinks,
            shutdown_grace: Duration::from_secs(
                args.shutdown_grace_seconds
                    .or(file.shutdown_grace_seconds)
                    .unwrap_or(30),
            ),
            log_format: args.log_format.or(file.log_format),
            won_stages: file
                .crm
                .won_stages
                .unwrap_or_else(|| vec!["Closed Won".to_owned(), "Closed/Won".to_owned()]),
            hubspot_stages: hubspot_stages(file.crm.hubspot_stages.unwrap_or_default()),
            ingress: file.ingress,
            bands,
        })
    }

    /// What a HubSpot stage id (or, in exports, a stage label) means;
    /// `None` for a stage neither catalog knows.
    pub(crate) fn hubspot_stage(&self, stage: &str) -> Option<StageKind> {
        let stage = stage.trim();
        if let Some(kind) = self.hubspot_stages.get(&stage.to_ascii_lowercase()) {
            return Some(*kind);
        }
        self.is_won_stage(stage).then_some(StageKind::Won)
    }

    /// Whether a CRM stage name is in the closed-won catalog.
    pub(crate) fn is_won_stage(&self, stage: &str) -> bool {
        let stage = stage.trim();
        self.won_stages
            .iter()
            .any(|won| won.trim().eq_ignore_ascii_case(stage))
    }
}

/// The default HubSpot catalog with the configured stages over it.
fn hubspot_stages(configured: BTreeMap<String, StageKind>) -> BTreeMap<String, StageKind> {
    let mut stages: BTreeMap<String, StageKind> = DEFAULT_HUBSPOT_STAGES
        .iter()
        .map(|(id, kind)| ((*id).to_owned(), *kind))
        .collect();
    for (id, kind) in configured {
        stages.insert(id.trim().to_ascii_lowercase(), kind);
    }
    stages
}

/// Worker Versioning from the arguments and the file: on with a deployment
/// name, and then the build id defaults to the release version.
fn versioning(args: &SettingsArgs, file: &mut FileConfig) -> anyhow::Result<Option<Versioning>> {
    let name = args.deployment_name.clone().or(file.deployment_name.take());
    let build_id = args.build_id.clone().or(file.build_id.take());
    let behavior = args.versioning_behavior.or(file.versioning_behavior);
    let Some(deployment_name) = name else {
        if build_id.is_some() || behavior.is_some() {
            return Err(Exit::config(
                "a build id or versioning behavior needs a deployment name \
                 (--deployment-name or HANDOFF_DEPLOYMENT_NAME)",
            ));
        }
        return Ok(None);
    };
    let build_id = build_id.unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned());
    // The server names a version `<deployment>.<build id>`.
    if deployment_name.trim().is_empty() || deployment_name.contains('.') {
        return Err(Exit::config(format!(
            "deployment name {deployment_name:?} must not be empty or contain a dot"
        )));
    }
    if build_id.trim().is_empty() {
        return Err(Exit::config("build id must not be empty"));
    }
    Ok(Some(Versioning {
        deployment_name,
        build_id,
        behavior: behavior.unwrap_or(VersioningArg::AutoUpgrade),
    }))
}

fn read_file(explicit: Option<&Path>) -> anyhow::Result<FileConfig> {
    let path: PathBuf = match explicit {
        Some(path) => path.to_owned(),
        None if Path::new(DEFAULT_CONFIG_FILE).exists() => PathBuf::from(DEFAULT_CONFIG_FILE),
        None => return Ok(FileConfig::default()),
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Exit::config(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text)
        .map_err(|e| Exit::config(format!("invalid config file {}: {e}", path.display())))
}

fn resolve_bands(config: SegmentsConfig) -> anyhow::Result<SegmentBands> {
    let mut bands = SegmentBands::default();
    if let Some(default) = config.default {
        if !SEGMENTS.contains(&default.as_str()) {
            return Err(Exit::config(format!(
                "segments.default: {default:?} is not one of {SEGMENTS:?}"
            )));
        }
        bands.default_segment = default;
    }
    if let Some(custom) = config.bands {
        for (currency, band) in &custom {
            if !(band.mid_market >= 0.0 && band.enterprise >= band.mid_market) {
                return Err(Exit::config(format!(
                    "segments.bands.{currency}: need 0 <= mid_market <= enterprise"
                )));
            }
        }
        bands.bands = custom
            .into_iter()
            .map(|(c, b)| (c.to_ascii_uppercase(), b))
            .collect();
    }
    Ok(bands)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("handoff.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let (_dir, path) = write("task_queue = \"from-file\"\nfallback_owner = \"file-owner\"\n");
        let args = SettingsArgs {
            config: Some(path),
            task_queue: Some("from-flag".into()),
            ..Default::default()
        };
        let settings = Settings::load(&args).unwrap();
        assert_eq!(settings.task_queue, "from-flag");
        assert_eq!(settings.fallback_owner.as_deref(), Some("file-owner"));
        assert_eq!(settings.database_url, DEFAULT_DATABASE_URL);
    }

    #[test]
    fn the_stage_catalog_and_bands_come_from_the_file() {
        let (_dir, path) = write(
            "[crm]\nwon_stages = [\"Won\", \"Signed\"]\n[segments]\ndefault = \"smb\"\n[segments.bands.usd]\nmid_market = 10\nenterprise = 20\n",
        );
        let settings = Settings::load(&SettingsArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert!(settings.is_won_stage(" signed "));
        assert!(!settings.is_won_stage("Closed Won"));
        assert_eq!(settings.bands.bands["USD"].enterprise, 20.0);
        assert_eq!(settings.bands.default_segment, "smb");
    }

    #[test]
    fn hubspot_stages_extend_the_default_pipeline() {
        let (_dir, path) = write(
            "[crm]\nwon_stages = [\"Contract signed\"]\n[crm.hubspot_stages]\n31337001 = \"won\"\n31337002 = \"lost\"\n",
        );
        let settings = Settings::load(&SettingsArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(settings.hubspot_stage("31337001"), Some(StageKind::Won));
        assert_eq!(settings.hubspot_stage("31337002"), Some(StageKind::Lost));
        assert_eq!(settings.hubspot_stage("closedwon"), Some(StageKind::Won));
        assert_eq!(
            settings.hubspot_stage("contractsent"),
            Some(StageKind::Open)
        );
        assert_eq!(
            settings.hubspot_stage("Contract Signed"),
            Some(StageKind::Won)
        );
        assert_eq!(settings.hubspot_stage("31337999"), None);

        let (_dir, path) = write("[crm.hubspot_stages]\n1 = \"maybe\"\n");
        let err = Settings::load(&SettingsArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("maybe"), "{err}");
    }

    #[test]
    fn typos_and_bad_values_are_configuration_errors() {
        let (_dir, path) = write("task_queu = \"x\"\n");
        let err = Settings::load(&SettingsArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(crate::exit::code_of(&err), crate::exit::CONFIG);
        assert!(err.to_string().contains("task_queu"), "{err}");

        let (_dir, path) = write("[segments.bands.USD]\nmid_market = 50\nenterprise = 10\n");
        let err = Settings::load(&SettingsArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("segments.bands.USD"), "{err}");
    }

    #[test]
    fn versioning_is_on_with_a_deployment_name_and_checks_its_parts() {
        let load = |text: &str| {
            let (_dir, path) = write(text);
            Settings::load(&SettingsArgs {
                config: Some(path),
                ..Default::default()
            })
        };
        assert_eq!(load("").unwrap().versioning, None);
        let versioning = load("deployment_name = \"handoff\"\n")
            .unwrap()
            .versioning
            .unwrap();
        assert_eq!(versioning.build_id, env!("CARGO_PKG_VERSION"));
        assert_eq!(versioning.behavior, VersioningArg::AutoUpgrade);
        let pinned =
            load("deployment_name = \"handoff\"\nbuild_id = \"2026.12.1\"\nversioning_behavior = \"pinned\"\n")
                .unwrap()
                .versioning
                .unwrap();
        assert_eq!(
            (pinned.build_id.as_str(), pinned.behavior),
            ("2026.12.1", VersioningArg::Pinned)
        );

        let err = load("build_id = \"b1\"\n").unwrap_err();
        assert!(err.to_string().contains("needs a deployment name"), "{err}");
        let err = load("deployment_name = \"a.b\"\n").unwrap_err();
        assert!(err.to_string().contains("contain a dot"), "{err}");
        let err = load("deployment_name = \"handoff\"\nbuild_id = \" \"\n").unwrap_err();
        assert!(
            err.to_string().contains("build id must not be empty"),
            "{err}"
        );
    }

    #[test]
    fn ledger_retention_is_off_unless_set_and_never_zero() {
        let (_dir, path) = write("ledger_retention_days = 365\n");
        let from_file = SettingsArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        assert_eq!(
            Settings::load(&from_file).unwrap().ledger_retention_days,
            Some(365)
        );
        let from_flag = SettingsArgs {
            config: Some(path),
            ledger_retention_days: Some(30),
            ..Default::default()
        };
        assert_eq!(
            Settings::load(&from_flag).unwrap().ledger_retention_days,
            Some(30)
        );
        let (_empty_dir, empty) = write("");
        let unset = SettingsArgs {
            config: Some(empty),
            ..Default::default()
        };
        assert_eq!(Settings::load(&unset).unwrap().ledger_retention_days, None);

        let zero = SettingsArgs {
            ledger_retention_days: Some(0),
            ..Default::default()
        };
        let err = Settings::load(&zero).unwrap_err();
        assert_eq!(crate::exit::code_of(&err), crate::exit::CONFIG);
        assert!(err.to_string().contains("retention"), "{err}");
    }
}
