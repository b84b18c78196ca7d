//! The command line: every subcommand and flag, with the help text users read.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// Runs and operates the revenue handoff on Temporal.
#[derive(Debug, Parser)]
#[command(
    name = "handoff",
    version,
    about = "Runs the revenue handoff: one durable Temporal workflow per closed-won deal",
    long_about = "Runs the revenue handoff: one durable Temporal workflow per closed-won deal, \
                  from signature through kickoff to first value.\n\n\
                  Start locally with `handoff dev`, then `handoff deal start examples/bundles/smb.json` \
                  and `handoff deal list`. Temporal connection settings come from TEMPORAL_ADDRESS, \
                  TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, the TEMPORAL_TLS_* variables and temporal.toml \
                  profiles. Every other setting follows: flag > HANDOFF_* variable > handoff.toml > default."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) settings: SettingsArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Settings every subcommand shares.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct SettingsArgs {
    /// Configuration file [default: ./handoff.toml when it exists]
    #[arg(long, global = true, env = "HANDOFF_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Task queue the worker polls and handoffs start on [default: revenue-handoff]
    #[arg(long, global = true, env = "HANDOFF_TASK_QUEUE", value_name = "NAME")]
    pub(crate) task_queue: Option<String>,
    /// Ledger database: sqlite://PATH [default: sqlite://.handoff/handoff.db]
    #[arg(long, global = true, env = "HANDOFF_DATABASE_URL", value_name = "URL")]
    pub(crate) database_url: Option<String>,
    /// Listen address of the worker's metrics endpoint [default: 127.0.0.1:9464]
    #[arg(long, global = true, env = "HANDOFF_METRICS_ADDR", value_name = "ADDR")]
    pub(crate) metrics_addr: Option<SocketAddr>,
    /// Handle that owns every role a bundle leaves empty [default: revops-queue]
    #[arg(
        long,
        global = true,
        env = "HANDOFF_FALLBACK_OWNER",
        value_name = "HANDLE"
    )]
    pub(crate) fallback_owner: Option<String>,
    /// Business seconds per wall second for new handoffs; 86400 runs a day a second [default: 1]
    #[arg(long, global = true, env = "HANDOFF_TIME_SCALE", value_name = "N")]
    pub(crate) time_scale: Option<u32>,
    /// Directory of playbooks, the owner directory and holiday calendars [default: playbooks]
    #[arg(long, global = true, env = "HANDOFF_PLAYBOOK_DIR", value_name = "DIR")]
    pub(crate) playbook_dir: Option<PathBuf>,
    /// Payload encryption keys, id:base64key[,id:base64key...]: the first encrypts, all decrypt
    /// [default: payloads are not encrypted]; set it in the environment, not on a command line
    #[arg(
        long,
        global = true,
        env = "HANDOFF_CODEC_KEYS",
        hide_env_values = true,
        value_name = "KEYS"
    )]
    pub(crate) codec_keys: Option<String>,
    /// Owner directory file [default: directory.toml in the playbook directory]
    #[arg(
        long,
        global = true,
        env = "HANDOFF_DIRECTORY_FILE",
        value_name = "FILE"
    )]
    pub(crate) directory_file: Option<PathBuf>,
    /// Days after a handoff ended that the ledger keeps its personal data; the worker erases it
    /// hourly after that [default: kept forever]
    #[arg(
        long,
        global = true,
        env = "HANDOFF_LEDGER_RETENTION_DAYS",
        value_name = "DAYS"
    )]
    pub(crate) ledger_retention_days: Option<u32>,
    #[command(flatten)]
    pub(crate) sinks: SinkArgs,
    /// History length at which a new handoff continues as new [default: 10000]
    #[arg(
        long,
        global = true,
        env = "HANDOFF_MAX_HISTORY_EVENTS",
        value_name = "EVENTS"
    )]
    pub(crate) max_history_events: Option<u32>,
    /// Seconds the worker waits for running activities on shutdown [default: 30]
    #[arg(
        long,
        global = true,
        env = "HANDOFF_SHUTDOWN_GRACE_SECONDS",
        value_name = "SECONDS"
    )]
    pub(crate) shutdown_grace_seconds: Option<u64>,
    /// Handoffs the worker keeps in memory between their tasks [default: 1000]
    #[arg(
        long,
        global = true,
        env = "HANDOFF_MAX_CACHED_WORKFLOWS",
        value_name = "N"
    )]
    pub(crate) max_cached_workflows: Option<usize>,
    /// Worker Deployment name; setting it opts the worker into Worker Versioning
    /// [default: no versioning]
    #[arg(
        long,
        global = true,
        env = "HANDOFF_DEPLOYMENT_NAME",
        value_name = "NAME"
    )]
    pub(crate) deployment_name: Option<String>,
    /// Build id of this worker within its deployment [default: the release version]
    #[arg(long, global = true, env = "HANDOFF_BUILD_ID", value_name = "ID")]
    pub(crate) build_id: Option<String>,
    /// How handoffs follow new builds under Worker Versioning [default: auto-upgrade]
    #[arg(
        long,
        global = true,
        env = "HANDOFF_VERSIONING_BEHAVIOR",
        value_name = "BEHAVIOR"
    )]
    pub(crate) versioning_behavior: Option<VersioningArg>,
    /// Log format [default: human on a terminal, json otherwise]
    #[arg(long, global = true, env = "HANDOFF_LOG_FORMAT", value_name = "FORMAT")]
    pub(crate) log_format: Option<LogFormat>,
}

/// Sink settings; secrets come from the environment only.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Sinks")]
pub(crate) struct SinkArgs {
    /// Generic webhook that receives tasks and notifications
    #[arg(long, global = true, env = "HANDOFF_WEBHOOK_URL", value_name = "URL")]
    pub(crate) webhook_url: Option<String>,
    /// Key of the webhook's X-Handoff-Signature HMAC (environment only)
    #[arg(
        long,
        global = true,
        env = "HANDOFF_WEBHOOK_SECRET",
        hide = true,
        hide_env_values = true
    )]
    pub(crate) webhook_secret: Option<String>,
    /// Slack-compatible incoming webhook URL (it is a secret: prefer the environment)
    #[arg(
        long,
        global = true,
        env = "HANDOFF_SLACK_WEBHOOK_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(crate) slack_webhook_url: Option<String>,
    /// SMTP relay host; e-mail is off without one
    #[arg(long, global = true, env = "HANDOFF_SMTP_HOST", value_name = "HOST")]
    pub(crate) smtp_host: Option<String>,
    /// SMTP port [default: 587, or 465 with --smtp-tls tls, 25 with none]
    #[arg(long, global = true, env = "HANDOFF_SMTP_PORT", value_name = "PORT")]
    pub(crate) smtp_port: Option<u16>,
    /// SMTP transport security: starttls, tls or none [default: starttls]
    #[arg(long, global = true, env = "HANDOFF_SMTP_TLS", value_name = "MODE")]
    pub(crate) smtp_tls: Option<SmtpTlsArg>,
    /// SMTP user name; authentication is off without one
    #[arg(
        long,
        global = true,
        env = "HANDOFF_SMTP_USERNAME",
        value_name = "USER"
    )]
    pub(crate) smtp_username: Option<String>,
    /// SMTP password (environment only)
    #[arg(
        long,
        global = true,
        env = "HANDOFF_SMTP_PASSWORD",
        hide = true,
        hide_env_values = true
    )]
    pub(crate) smtp_password: Option<String>,
    /// Sender of e-mails, e.g. "Handoff <handoff@example.com>"
    #[arg(long, global = true, env = "HANDOFF_SMTP_FROM", value_name = "MAILBOX")]
    pub(crate) smtp_from: Option<String>,
    /// Seconds one send to a sink may take [default: 10]
    #[arg(
        long,
        global = true,
        env = "HANDOFF_SINK_TIMEOUT_SECONDS",
        value_name = "SECONDS"
    )]
    pub(crate) sink_timeout_seconds: Option<u64>,
}

/// `--smtp-tls` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SmtpTlsArg {
    /// STARTTLS after connecting, required
    Starttls,
    /// TLS from the first byte (SMTPS)
    Tls,
    /// No TLS (local relays only)
    None,
}

/// `--versioning-behavior` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum VersioningArg {
    /// A handoff stays on the build it started on until it ends
    Pinned,
    /// A handoff moves to the deployment's current build at its next workflow task
    AutoUpgrade,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Readable lines, for terminals.
    Human,
    /// One JSON object per line, for containers.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the worker until SIGTERM or Ctrl-C
    Worker,
    /// Run a local Temporal dev server (UI included) and the worker; Ctrl-C stops both
    Dev(DevArgs),
    /// Start, signal, inspect and list handoffs
    #[command(subcommand)]
    Deal(DealCommand),
    /// Read the tasks in the ledger
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Read the notifications in the ledger
    #[command(subcommand)]
    Notifications(NotificationsCommand),
    /// Erase personal data from the ledger
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Save a handoff's history for replay
    #[command(subcommand)]
    History(HistoryCommand),
    /// Serve the payload codec endpoints Temporal UI calls to show encrypted payloads
    ///
    /// Needs HANDOFF_CODEC_KEYS (the same keys as the worker) and
    /// HANDOFF_CODEC_TOKEN (the bearer token every request must carry). In
    /// Temporal UI set the codec endpoint to this server's URL.
    CodecServer(CodecServerArgs),
    /// Receive CRM and callback webhooks and hand them to the handoffs
    ///
    /// Endpoints, each refusing (401) what it cannot verify:
    ///   POST /webhooks/generic     X-Handoff-Signature, key HANDOFF_INGRESS_SECRET
    ///   POST /webhooks/hubspot     X-HubSpot-Signature-v3, key HANDOFF_HUBSPOT_CLIENT_SECRET,
    ///                              over HANDOFF_INGRESS_PUBLIC_URL; deals read with HANDOFF_HUBSPOT_TOKEN
    ///   POST /webhooks/salesforce  Outbound Messages of HANDOFF_SALESFORCE_ORG_ID
    ///                              (and ?token=HANDOFF_SALESFORCE_TOKEN when set)
    /// /healthz, /readyz and /metrics on the same address. The README shows a
    /// curl call for each and the set-up on the CRM side.
    #[command(
        verbatim_doc_comment,
        after_help = "Example:\n  HANDOFF_INGRESS_SECRET=$(openssl rand -hex 32) handoff ingress --listen 0.0.0.0:8088"
    )]
    Ingress(IngressArgs),
    /// Replay saved histories against this build's workflow code; exits 1 on nondeterminism
    ///
    /// Run it before deploying a new build: every history of a handoff in
    /// flight must replay, or the new code would break it. A directory
    /// stands for every `*.json` in it.
    #[command(after_help = "Example:\n  handoff replay tests/histories/")]
    Replay {
        /// History files (from `handoff history export`) or directories of them
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// SLA attainment of finished handoffs per segment and milestone, from the ledger
    #[command(
        after_help = "Examples:\n  handoff report\n  handoff report --since 2026-01-01 --json"
    )]
    Report {
        /// Only handoffs that ended at or after this date (UTC) or RFC 3339 instant
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Check playbooks and show the plan they give
    #[command(subcommand)]
    Playbook(PlaybookCommand),
    /// Measure the worker: full handoffs on a scratch dev server against the ceiling the server allows
    ///
    /// Starts its own Temporal dev server (SQLite file), a `handoff worker`
    /// and a ceiling worker in a scratch directory, drives synthetic deals
    /// through full handoffs on a fixed schedule, and prints a Markdown table
    /// (also written as JSON). Build with --release for meaningful numbers.
    #[command(
        after_help = "Examples:\n  make bench\n  handoff bench --deals 500 --open 0 --out bench-report"
    )]
    Bench(BenchArgs),
    /// The benchmark's ceiling worker (started by `handoff bench`)
    #[command(hide = true)]
    BenchCeilingWorker,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct BenchArgs {
    /// Synthetic deals driven through full handoffs (and as many ceiling runs)
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub(crate) deals: usize,
    /// Deals on the all-breached schedule, for its action counts
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub(crate) breached: usize,
    /// Seed of the synthetic deals; the same seed gives the same deals
    #[arg(long, default_value_t = 7)]
    pub(crate) seed: u64,
    /// Business seconds per wall second; 86400 runs a business day a second
    #[arg(long, default_value_t = 86400, value_name = "N")]
    pub(crate) time_scale: u32,
    /// Handoffs held open at once to measure memory per cached handoff (0 skips it)
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub(crate) open: usize,
    /// Signals timed from send to `status` showing them
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub(crate) latency_samples: usize,
    /// Recorded histories; the longest one is replayed for the replay time
    #[arg(long, default_value = "tests/histories", value_name = "DIR")]
    pub(crate) histories: PathBuf,
    /// Where bench.json and bench.md are written
    #[arg(long, default_value = "bench-report", value_name = "DIR")]
    pub(crate) out: PathBuf,
}

/// `handoff ingress` settings; secrets come from the environment only.
#[derive(Debug, Clone, Args)]
pub(crate) struct IngressArgs {
    /// Address to listen on [default: 127.0.0.1:8088]
    #[arg(long, env = "HANDOFF_INGRESS_ADDR", value_name = "ADDR")]
    pub(crate) listen: Option<SocketAddr>,
    /// HMAC key of X-Handoff-Signature on /webhooks/generic (environment only)
    #[arg(
        long,
        env = "HANDOFF_INGRESS_SECRET",
        hide = true,
        hide_env_values = true
    )]
    pub(crate) secret: Option<String>,
    // In `help` rather than a doc comment: rustdoc would take the URLs for links.
    #[arg(
        long,
        env = "HANDOFF_INGRESS_PUBLIC_URL",
        value_name = "URL",
        help = "The address HubSpot calls, e.g. https://hooks.example.com (its v3 signatures cover it)"
    )]
    pub(crate) public_url: Option<String>,
    /// HubSpot app client secret, the key of X-HubSpot-Signature-v3 (environment only)
    #[arg(
        long,
        env = "HANDOFF_HUBSPOT_CLIENT_SECRET",
        hide = true,
        hide_env_values = true
    )]
    pub(crate) hubspot_client_secret: Option<String>,
    /// HubSpot access token for reading deals, companies and contacts (environment only)
    #[arg(
        long,
        env = "HANDOFF_HUBSPOT_TOKEN",
        hide = true,
        hide_env_values = true
    )]
    pub(crate) hubspot_token: Option<String>,
    #[arg(
        long,
        env = "HANDOFF_HUBSPOT_API_URL",
        value_name = "URL",
        help = "Base URL of the HubSpot CRM API [default: https://api.hubapi.com]"
    )]
    pub(crate) hubspot_api_url: Option<String>,
    /// HubSpot portal (account) id whose events are taken; events of other portals are ignored
    /// (the token reads one portal's deals) [default: any portal]
    #[arg(long, env = "HANDOFF_HUBSPOT_PORTAL_ID", value_name = "ID")]
    pub(crate) hubspot_portal_id: Option<u64>,
    /// Salesforce organisation id whose Outbound Messages are accepted (15 or 18 characters)
    #[arg(long, env = "HANDOFF_SALESFORCE_ORG_ID", value_name = "ID")]
    pub(crate) salesforce_org_id: Option<String>,
    /// Token the Outbound Message endpoint URL carries as ?token= (environment only)
    #[arg(
        long,
        env = "HANDOFF_SALESFORCE_TOKEN",
        hide = true,
        hide_env_values = true
    )]
    pub(crate) salesforce_token: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct CodecServerArgs {
    /// Address to listen on
    #[arg(
        long,
        default_value = "127.0.0.1:8089",
        env = "HANDOFF_CODEC_ADDR",
        value_name = "ADDR"
    )]
    pub(crate) listen: SocketAddr,
    /// Origin of Temporal UI, the only one browsers may call from
    #[arg(
        long,
        default_value = "http://127.0.0.1:8233",
        env = "HANDOFF_CODEC_CORS_ORIGIN",
        value_name = "ORIGIN"
    )]
    pub(crate) cors_origin: String,
    /// Bearer token every request must carry
    #[arg(
        long,
        env = "HANDOFF_CODEC_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LedgerCommand {
    /// Erase the personal data of one handoff, or of every handoff past the retention period
    ///
    /// Task titles and owners, notification recipients, subjects and bodies,
    /// and what sinks answered become `[erased]` (recipients: none). Keys,
    /// kinds, statuses, instants, escalation levels and final outcomes stay,
    /// so `handoff report` and audits read the same. Each erasure that
    /// changes something is recorded in the ledger's `erasures` table
    /// (workflow id, when, request or retention, rows changed); running it
    /// again changes nothing and says so.
    ///
    /// Erasure covers the ledger only. Temporal keeps a handoff's bundle and
    /// events in its history until the namespace's retention period after
    /// the handoff ends (HANDOFF_CODEC_KEYS encrypts them there). A handoff
    /// still running keeps its bundle in Temporal, and its later tasks and
    /// notifications reach the ledger with personal data again.
    #[command(
        after_help = "Examples:\n  handoff ledger erase --deal salesforce:006XYZ\n  \
                      handoff ledger erase --expired --ledger-retention-days 365 --json"
    )]
    Erase(EraseArgs),
}

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("erased").required(true).args(["deal", "expired"])))]
pub(crate) struct EraseArgs {
    /// The handoff: a workflow id, or source:id
    #[arg(long, value_name = "DEAL")]
    pub(crate) deal: Option<String>,
    /// Every handoff that ended more than --ledger-retention-days ago
    #[arg(long)]
    pub(crate) expired: bool,
    /// Print a JSON object
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum HistoryCommand {
    /// Save every run of a handoff as PREFIX.json, or PREFIX.runN.json after continue-as-new
    Export {
        /// A workflow id, or source:id
        deal: String,
        /// Path prefix of the files written
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PlaybookCommand {
    /// Validate a playbook directory: every problem as file:line: message
    #[command(after_help = "Exits 0 when the directory is valid, 64 otherwise.")]
    Check {
        /// The directory (playbooks, directory.toml, calendars/)
        dir: PathBuf,
    },
    /// Print the effective plan of a segment for a sample deal
    #[command(after_help = "Examples:\n  handoff playbook show enterprise\n  \
                            handoff playbook show smb --dir my-playbooks --closed-won-at 2026-12-18T17:00:00Z")]
    Show {
        /// smb, mid_market or enterprise
        segment: String,
        /// Playbook directory [default: the playbook_dir setting]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Closed-won instant of the sample deal; its gates pass at once
        #[arg(long, value_name = "INSTANT", default_value = "2026-03-02T15:00:00Z")]
        closed_won_at: String,
        /// Team timezone of the sample deal
        #[arg(long, value_name = "TZ", default_value = "America/New_York")]
        timezone: String,
        /// Holiday calendar of the sample deal
        #[arg(long, value_name = "NAME", default_value = "US")]
        calendar: String,
    },
}

#[derive(Debug, Clone, Args)]
pub(crate) struct DevArgs {
    /// gRPC port of the dev server
    #[arg(long, default_value_t = 7233, env = "HANDOFF_DEV_PORT")]
    pub(crate) port: u16,
    /// Port of Temporal UI
    #[arg(long, default_value_t = 8233, env = "HANDOFF_DEV_UI_PORT")]
    pub(crate) ui_port: u16,
    /// Directory for the dev server's SQLite file and log
    #[arg(
        long,
        default_value = ".handoff",
        env = "HANDOFF_DEV_DIR",
        value_name = "DIR"
    )]
    pub(crate) state_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DealCommand {
    /// Validate a bundle and send it as `closed_won`, starting the handoff if needed
    #[command(
        after_help = "Examples:\n  handoff deal start examples/bundles/smb.json\n  \
                            cat bundle.json | handoff deal start - --json"
    )]
    Start {
        /// Bundle file, or - for standard input
        file: PathBuf,
        /// Print {"workflow_id", "run_id", "started"}
        #[arg(long)]
        json: bool,
    },
    /// Start one handoff per closed-won record of a CRM export
    #[command(
        after_help = "Examples:\n  handoff deal import --format salesforce-json examples/crm/Opportunities.json\n  \
                            handoff deal import --format salesforce-json opps.json --accounts accts.json --as-of 2026-03-02T00:00:00Z\n  \
                            handoff deal import --format salesforce-csv Opportunities.csv\n  \
                            handoff deal import --format hubspot-csv deals.csv --portal-id 700001"
    )]
    Import {
        /// Export format
        #[arg(long, value_enum)]
        format: ImportFormat,
        /// Export file
        file: PathBuf,
        /// Accounts file resolving @AccountRefN [default: Accounts.json beside FILE]
        #[arg(long, value_name = "FILE")]
        accounts: Option<PathBuf>,
        /// Anchor gate SLAs at this RFC 3339 instant instead of closed_won_at (backfills)
        #[arg(long, value_name = "INSTANT")]
        as_of: Option<String>,
        /// HubSpot account (portal) id the export comes from; required by hubspot-csv
        #[arg(long, value_name = "N")]
        portal_id: Option<u64>,
        /// Print the counts as JSON
        #[arg(long)]
        json: bool,
    },
    /// Send one signal to a handoff (starting it when it does not exist yet)
    #[command(
        after_help = "Examples:\n  handoff deal signal manual:DEMO-1 contract_signed\n  \
                            handoff deal signal handoff-manual-DEMO-1 kickoff_held --data '{\"at\": \"2026-03-04T15:00:00Z\"}'"
    )]
    Signal {
        /// A workflow id, or source:id
        deal: String,
        /// Signal name, e.g. contract_signed, security_cleared, kickoff_held, deal_lost
        name: String,
        /// JSON object payload, e.g. '{"at": "2026-03-04T15:00:00Z", "by": "ae-01"}'
        #[arg(long, value_name = "JSON")]
        data: Option<String>,
    },
    /// Change a running handoff's schedule through a validated update
    ///
    /// Updates: extend_deadline {milestone, new_due, reason},
    /// waive_milestone {milestone, reason}, reassign_owner {role, handle}.
    /// A rejected update changes nothing; its reason is printed and the
    /// command exits 1.
    Update {
        /// A workflow id, or source:id
        deal: String,
        /// extend_deadline, waive_milestone or reassign_owner
        name: String,
        /// JSON object payload, e.g. '{"milestone": "kickoff", "new_due": "2026-03-13T22:00:00Z", "reason": "customer travel"}'
        #[arg(long, value_name = "JSON")]
        data: String,
        /// Print the handoff's status JSON after the update
        #[arg(long)]
        json: bool,
    },
    /// Show a handoff's status
    Status {
        /// A workflow id, or source:id
        deal: String,
        /// Print the status query's JSON
        #[arg(long)]
        json: bool,
    },
    /// List handoffs, soonest deadline first
    List(ListArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ImportFormat {
    /// Salesforce sObject tree JSON ({"records": [...]})
    SalesforceJson,
    /// Salesforce opportunity CSV (Data Loader, report or warehouse export)
    SalesforceCsv,
    /// HubSpot deal CSV export (needs --portal-id)
    HubspotCsv,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ListArgs {
    /// Include finished handoffs
    #[arg(long)]
    pub(crate) all: bool,
    /// At most this many
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: usize,
    /// Only this stage (awaiting_bundle, awaiting_gates, kickoff, onboarding, completed, cancelled)
    #[arg(long)]
    pub(crate) stage: Option<String>,
    /// Only this segment (smb, mid_market, enterprise)
    #[arg(long)]
    pub(crate) segment: Option<String>,
    /// Only this handoff owner handle
    #[arg(long)]
    pub(crate) owner: Option<String>,
    /// Only handoffs at risk
    #[arg(long)]
    pub(crate) at_risk: bool,
    /// Only handoffs whose next deadline is within this duration, e.g. 24h, 3days
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) due_within: Option<std::time::Duration>,
    /// Print a JSON array
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TasksCommand {
    /// List tasks, by deal and due date
    List {
        /// Only this deal (workflow id or source:id)
        #[arg(long)]
        deal: Option<String>,
        /// Print a JSON array
        #[arg(long)]
        json: bool,
    },
    /// Mark a task done: sends `task_completed` to the deal's handoff
    ///
    /// KEY is the task's key as `tasks list` shows it. Tasks that waited on
    /// it are unblocked by the handoff; no worker needs to run for the send.
    #[command(after_help = "Example:\n  handoff tasks done salesforce:OPP-1042 kickoff_call")]
    Done {
        /// Workflow id or source:id
        deal: String,
        /// The task's key
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum NotificationsCommand {
    /// List notifications, oldest first
    List {
        /// Only this deal (workflow id or source:id)
        #[arg(long)]
        deal: Option<String>,
        /// Print a JSON array
        #[arg(long)]
        json: bool,
    },
}
