//! `handoff`: the revenue handoff worker and its operator CLI.

mod cli;
mod config;
mod deals;
mod dev;
mod exit;
mod import;
mod ledger_view;
mod playbook;
mod temporal;
mod terminal;
mod worker;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use handoff_activities::ledger::Ledger;

use crate::cli::{
    Cli, Command, DealCommand, LogFormat, NotificationsCommand, PlaybookCommand, TasksCommand,
};
use crate::config::Settings;
use crate::deals::Courier;
use crate::exit::Exit;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.settings) {
        Ok(settings) => settings,
        Err(error) => return report(&error),
    };
    init_tracing(&cli.command, settings.log_format);
    match run(cli.command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(&error),
    }
}

fn report(error: &anyhow::Error) -> ExitCode {
    eprintln!(
        "error: {}",
        terminal::clean_multiline(&format!("{error:#}"))
    );
    ExitCode::from(exit::code_of(error))
}

/// Long-running commands log at `info`; one-shot commands stay quiet unless
/// something goes wrong, so their output can be piped.
fn init_tracing(command: &Command, format: Option<LogFormat>) {
    let default = match command {
        Command::Worker | Command::Dev(_) => "info",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let format = format.unwrap_or(if std::io::stderr().is_terminal() {
        LogFormat::Human
    } else {
        LogFormat::Json
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
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
            ledger_view::tasks(&open_ledger(&settings).await?, deal.as_deref(), json).await
        }
        Command::Notifications(NotificationsCommand::List { deal, json }) => {
            ledger_view::notifications(&open_ledger(&settings).await?, deal.as_deref(), json).await
        }
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
            deals::read_bundle(&file)?;
            deals::start(&courier(settings).await?, &file, json).await
        }
        DealCommand::Import {
            format,
            file,
            accounts,
            as_of,
            json,
        } => {
            let courier = courier(settings).await?;
            let request = import::ImportRequest {
                format,
                file: &file,
                accounts: accounts.as_deref(),
                as_of: as_of.as_deref(),
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

async fn open_ledger(settings: &Settings) -> anyhow::Result<Ledger> {
    Ledger::open(&settings.database_url).await.map_err(|e| {
        Exit::config(format!(
            "cannot open the ledger {}: {e:#}",
            settings.database_url
        ))
    })
}
