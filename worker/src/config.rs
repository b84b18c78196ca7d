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
use handoff_workflows::playbook::{Band, SEGMENTS, SegmentBands};

use crate::cli::{LogFormat, SettingsArgs};
use crate::codec::Keys;
use crate::exit::Exit;

/// Default task queue.
pub(crate) const DEFAULT_TASK_QUEUE: &str = "revenue-handoff";
/// Default metrics listen address.
pub(crate) const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";
/// Default fallback owner handle.
pub(crate) const DEFAULT_FALLBACK_OWNER: &str = "revops-queue";
/// Config file read when `--config` is not given and it exists.
const DEFAULT_CONFIG_FILE: &str = "handoff.toml";

/// Every setting of the process, typed and validated.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) task_queue: String,
    pub(crate) database_url: String,
    pub(crate) metrics_addr: SocketAddr,
    pub(crate) fallback_owner: String,
    pub(crate) time_scale: u32,
    /// Directory of playbooks and holiday calendars.
    pub(crate) playbook_dir: PathBuf,
    /// Payload encryption keys, when payloads are encrypted.
    pub(crate) codec_keys: Option<Keys>,
    /// History length at which new handoffs continue as new; `None` keeps the workflow's default.
    pub(crate) max_history_events: Option<u32>,
    pub(crate) shutdown_grace: Duration,
    pub(crate) log_format: Option<LogFormat>,
    /// CRM stage names that mean closed won, compared case-insensitively.
    pub(crate) won_stages: Vec<String>,
    pub(crate) bands: SegmentBands,
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
    playbook_dir: Option<PathBuf>,
    shutdown_grace_seconds: Option<u64>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    crm: CrmConfig,
    #[serde(default)]
    segments: SegmentsConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CrmConfig {
    /// Stage catalog: names that mean closed won.
    won_stages: Option<Vec<String>>,
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
        let file = read_file(args.config.as_deref())?;
        let bands = resolve_bands(file.segments)?;
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
        if task_queue.trim().is_empty() || task_queue.contains(['\'', '"']) {
            return Err(Exit::config(
                "task queue must not be empty or contain quotes",
            ));
        }
        Ok(Self {
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
            fallback_owner: args
                .fallback_owner
                .clone()
                .or(file.fallback_owner)
                .unwrap_or_else(|| DEFAULT_FALLBACK_OWNER.to_owned()),
            time_scale,
            max_history_events: args.max_history_events.or(file.max_history_events),
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
            bands,
        })
    }

    /// Whether a CRM stage name is in the closed-won catalog.
    pub(crate) fn is_won_stage(&self, stage: &str) -> bool {
        let stage = stage.trim();
        self.won_stages
            .iter()
            .any(|won| won.trim().eq_ignore_ascii_case(stage))
    }
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
        assert_eq!(settings.fallback_owner, "file-owner");
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
}
