//! `handoff`: the revenue handoff worker and its operator CLI.

mod bench;
mod cli;
mod codec;
mod codec_server;
mod config;
mod deals;
mod dev;
mod erasure;
mod exit;
mod history;
mod import;
mod ingress;
mod ledger_view;
mod listener;
mod metrics;
mod open_handoffs;
mod playbook;
mod report;
mod telemetry;
mod temporal;
mod terminal;
mod worker;

use std::process::ExitCode;

use clap::Parser as _;

use handoff_activities::ledger::Ledger;

use crate::cli::{
    Cli, Command, DealCommand, HistoryCommand, LedgerCommand, NotificationsCommand,
    PlaybookCommand, TasksCommand,
};
use crate::config::Settings;
use crate::deals::Courier;
use crate::exit::Exit;

#[tokio::main]
async fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.settings) {
        Ok(settings) => settings,
        Err(error) => return report(&error),
    };
    let _tracing = telemetry::init(&cli.command, settings.log_format);
    if let Some(keys) = settings.codec_keys.clone() {
        temporal::use_codec(keys);
    }
    match run(cli.command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(&error),
    }
}

async fn replay(files: &[std::path::PathBuf], keys: Option<&codec::Keys>) -> anyhow::Result<()> {
    let outcomes = history::replay(files, keys).await?;
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    for outcome in &outcomes {
        match &outcome.failure {
            None => println!("ok      {}", outcome.file.display()),
            Some(reason) => println!(
                "FAILED  {}: {}",
                outcome.file.display(),
                terminal::clean(reason)
            ),
        }
    }
    if failed > 0 {
        return Err(Exit::runtime(format!(
            "{failed} of {} histories do not replay: this build would break those handoffs; \
             guard the change with patched() (see README, Changing workflow code)",
            outcomes.len()
        )));
    }
    Ok(())
}

/// Rust ignores SIGPIPE, which turns `handoff deal list | head` into a panic
/// on the first write after `head` exits; a command-line tool should end
/// quietly instead, as other Unix tools do.
fn restore_default_sigpipe() {
    // SAFETY: called first thing in main, before any thread writes to a pipe;
    // it only resets the process's disposition of one signal.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn report(error: &anyhow::Error) -> ExitCode {
    eprintln!(
        "error: {}",
        terminal::clean_multiline(&format!("{error:#}"))
    );
    ExitCode::from(exit::code_of(error))
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Worker => {
            // Configuration errors exit 64 before any connection is tried.
            worker::load_playbooks(&settings)?;
            settings.sinks.build()?;
            let client = temporal::connect(None).await?;
            worker::run(&settings, client, None).await
        }
        Command::Dev(args) => dev::run(&settings, &args).await,
        Command::Deal(command) => run_deal(command, settings).await,
        Command::Tasks(TasksCommand::List { deal, json }) => {
            ledger_view::tasks(
                &open_existing_ledger(&settings).await?,
                deal.as_deref(),
                json,
            )
            .await
        }
        Command::Tasks(TasksCommand::Done { deal, key }) => {
            let courier = courier(settings).await?;
            let target = deals::target_of_ref(&deal)?;
            if !courier.ledger.deal_known(&target.workflow_id).await? {
                return Err(Exit::data(format!(
                    "no handoff for {deal} in the ledger; `handoff deal list --all` lists them"
                )));
            }
            let data = serde_json::json!({ "key": key }).to_string();
            deals::signal(&courier, &deal, "task_completed", Some(&data)).await
        }
        Command::Notifications(NotificationsCommand::List { deal, json }) => {
            let ledger = open_existing_ledger(&settings).await?;
            ledger_view::notifications(&ledger, deal.as_deref(), json).await
        }
        Command::Ledger(LedgerCommand::Erase(args)) => {
            let ledger = open_existing_ledger(&settings).await?;
            match args.deal {
                Some(deal) => erasure::erase_deal(&ledger, &deal, args.json).await,
                None => {
                    erasure::erase_expired(&ledger, settings.ledger_retention_days, args.json).await
                }
            }
        }
        Command::History(HistoryCommand::Export { deal, out }) => {
            let target = deals::target_of_ref(&deal)?;
            let client = temporal::connect(None).await?;
            for file in history::export(&client, &target.workflow_id, &out).await? {
                println!("{}", file.display());
            }
            Ok(())
        }
        Command::Replay { files } => replay(&files, settings.codec_keys.as_ref()).await,
        Command::CodecServer(args) => {
            let keys = settings.codec_keys.clone().ok_or_else(|| {
                Exit::config("set HANDOFF_CODEC_KEYS to the keys the worker encrypts with")
            })?;
            let token = args.token.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
                Exit::config("set HANDOFF_CODEC_TOKEN: every request must carry it")
            })?;
            let server = codec_server::CodecServer { keys, token };
            codec_server::run(server, args.listen, &args.cors_origin).await
        }
        Command::Ingress(args) => {
            let config = ingress::IngressConfig::resolve(&args, &settings)?;
            ingress::run(config, settings).await
        }
        Command::Report { since, json } => {
            report::run(
                &open_existing_ledger(&settings).await?,
                since.as_deref(),
                json,
            )
            .await
        }
        Command::Bench(args) => bench::run(&args).await,
        Command::BenchCeilingWorker => bench::run_ceiling_worker(&settings).await,
        Command::Playbook(PlaybookCommand::Check { dir }) => {
            playbook::check(&dir, settings.directory_file.as_deref())
        }
        Command::Playbook(PlaybookCommand::Show {
            segment,
            dir,
            closed_won_at,
            timezone,
            calendar,
        }) => {
            let sample = playbook::Sample {
                segment,
                closed_won_at,
                timezone,
                calendar,
            };
            playbook::show(&settings, dir.as_deref(), &sample)
        }
    }
}

async fn run_deal(command: DealCommand, settings: Settings) -> anyhow::Result<()> {
    match command {
        DealCommand::Start { file, json } => {
            // Validate before connecting: a bad bundle never reaches Temporal.
            // Read once: standard input (`-`) cannot be read twice.
            let bundle = deals::read_bundle(&file)?;
            deals::start(&courier(settings).await?, bundle, json).await
        }
        DealCommand::Import {
            format,
            file,
            accounts,
            as_of,
            portal_id,
            json,
        } => {
            let courier = courier(settings).await?;
            let request = import::ImportRequest {
                format,
                file: &file,
                accounts: accounts.as_deref(),
                as_of: as_of.as_deref(),
                portal_id,
            };
            let report = import::import(&courier, &request).await?;
            print_import(&report, json)?;
            if report.invalid > 0 {
                return Err(Exit::runtime(format!(
                    "{} invalid record(s)",
                    report.invalid
                )));
            }
            Ok(())
        }
        DealCommand::Signal { deal, name, data } => {
            deals::signal(&courier(settings).await?, &deal, &name, data.as_deref()).await
        }
        DealCommand::Update {
            deal,
            name,
            data,
            json,
        } => deals::update(&temporal::connect(None).await?, &deal, &name, &data, json).await,
        DealCommand::Status { deal, json } => {
            deals::status(&temporal::connect(None).await?, &deal, json).await
        }
        DealCommand::List(args) => deals::list(&temporal::connect(None).await?, &args).await,
    }
}

fn print_import(report: &import::ImportReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!(
        "read {}, started {}, existing {}, skipped {}, invalid {}",
        report.read, report.started, report.existing, report.skipped, report.invalid
    );
    for error in &report.errors {
        eprintln!(
            "invalid record {}: {}",
            terminal::clean(&error.record),
            terminal::clean(&error.message)
        );
    }
    Ok(())
}

async fn courier(settings: Settings) -> anyhow::Result<Courier> {
    let ledger = open_ledger(&settings).await?;
    let client = temporal::connect(None).await?;
    Ok(Courier {
        client,
        ledger,
        settings,
    })
}

/// The ledger a reading command (or an erasure) works on: one that must
/// already exist, since an empty one made here would only hide a wrong
/// directory or `HANDOFF_DATABASE_URL`.
async fn open_existing_ledger(settings: &Settings) -> anyhow::Result<Ledger> {
    let url = settings.database_url.trim();
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or_default())
        && !path.is_empty()
        && path != ":memory:"
        && !std::path::Path::new(path).exists()
    {
        return Err(Exit::config(format!(
            "no ledger at {path}: run the command in the directory the worker runs in (the \
             default {} is relative to it), or set HANDOFF_DATABASE_URL to the worker's ledger",
            handoff_activities::ledger::DEFAULT_DATABASE_URL
        )));
    }
    open_ledger(settings).await
}

async fn open_ledger(settings: &Settings) -> anyhow::Result<Ledger> {
    Ledger::open(&settings.database_url).await.map_err(|e| {
        Exit::config(format!(
            "cannot open the ledger {}: {e:#}",
            settings.database_url
        ))
    })
}
