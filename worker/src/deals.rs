//! `handoff deal start | signal | status | list`.

use std::io::Read as _;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt as _;
use serde::Serialize;
use temporalio_client::{Client, WorkflowListOptions};
use temporalio_common::search_attributes::SearchAttributeKey;

use handoff_activities::ledger::Ledger;
use handoff_workflows::bundle::ValidBundle;
use handoff_workflows::deal_handoff::{
    AT_RISK, DEAL_ID, DEAL_SOURCE, HANDOFF_OWNER, HANDOFF_STAGE, NEXT_DEADLINE, SEGMENT,
    WORKFLOW_TYPE,
};
use handoff_workflows::identity::{WORKFLOW_ID_PREFIX, parse_deal_ref, workflow_id};
use handoff_workflows::message::SIGNAL_NAMES;
use handoff_workflows::message::{UPDATE_NAMES, decode_update};
use handoff_workflows::status::Status;

use crate::cli::ListArgs;
use crate::config::Settings;
use crate::exit::Exit;
use crate::temporal::{self, Delivered, StartOptions, Target, UpdateOutcome};
use crate::terminal::{clean, print_table};

/// Delivers events to handoffs, consulting the deal registry first.
pub(crate) struct Courier {
    pub(crate) client: Client,
    pub(crate) ledger: Ledger,
    pub(crate) settings: Settings,
}

impl Courier {
    /// Sends `signal` to the deal's handoff, creating the handoff when the
    /// registry has never seen the deal.
    ///
    /// A deal the registry knows is only ever signalled, never started, so a
    /// finished handoff stays finished after Temporal's retention forgot it.
    /// Temporal takes a second delivery under the same `request_id` and
    /// drops it; `None` makes every call its own.
    pub(crate) async fn deliver(
        &self,
        target: &Target,
        signal: &str,
        payload: &serde_json::Value,
        bundle: Option<&ValidBundle>,
        request_id: Option<&str>,
    ) -> anyhow::Result<Delivered> {
        if self.ledger.deal_known(&target.workflow_id).await? {
            return temporal::signal(
                &self.client,
                &target.workflow_id,
                signal,
                payload,
                request_id,
            )
            .await;
        }
        let mut options = self.start_options(target, bundle);
        options.request_id = request_id.map(str::to_owned);
        let delivered =
            temporal::signal_with_start(&self.client, target, signal, payload, &options).await?;
        if let Delivered::Running { run_id, .. } = &delivered {
            self.ledger
                .record_deal(
                    &target.workflow_id,
                    &target.source,
                    &target.deal_id,
                    Some(run_id),
                )
                .await?;
        }
        Ok(delivered)
    }

    fn start_options(&self, target: &Target, bundle: Option<&ValidBundle>) -> StartOptions {
        let mut search_attributes = vec![
            ("DealId", "Keyword", serde_json::json!(target.deal_id)),
            ("DealSource", "Keyword", serde_json::json!(target.source)),
            (
                "HandoffStage",
                "Keyword",
                serde_json::json!("awaiting_bundle"),
            ),
        ];
        let summary = bundle.map(|bundle| {
            let segment = self.settings.bands.segment_of(bundle);
            search_attributes.push(("Segment", "Keyword", serde_json::json!(segment)));
            let deal = &bundle.bundle.deal;
            if let Some(amount) = deal.amount {
                search_attributes.push(("DealAmount", "Double", serde_json::json!(amount)));
            }
            let amount = deal
                .amount
                .map(|a| format!("{a:.0} {}", deal.currency.as_deref().unwrap_or("")))
                .unwrap_or_else(|| "amount unknown".to_owned());
            let account = clean(bundle.bundle.account.name.as_deref().unwrap_or(""));
            format!("{account} · {segment} · {}", amount.trim_end())
        });
        StartOptions {
            task_queue: self.settings.task_queue.clone(),
            time_scale: self.settings.time_scale,
            max_history_events: self.settings.max_history_events,
            summary: summary.or_else(|| Some(format!("deal {}:{}", target.source, target.deal_id))),
            search_attributes,
            other_workflow: None,
            request_id: None,
        }
    }
}

/// The handoff a bundle belongs to.
pub(crate) fn target_of(bundle: &ValidBundle) -> Target {
    Target {
        workflow_id: workflow_id(&bundle.source, &bundle.deal_id),
        source: bundle.source.trim().to_ascii_lowercase(),
        deal_id: bundle.deal_id.clone(),
    }
}

/// Resolves an operator's `DEAL` argument.
pub(crate) fn target_of_ref(deal: &str) -> anyhow::Result<Target> {
    let workflow_id = parse_deal_ref(deal).ok_or_else(|| {
        Exit::config(format!(
            "{deal:?} is not a deal: give a workflow id (handoff-…) or source:id"
        ))
    })?;
    let (source, deal_id) = match deal.trim().split_once(':') {
        Some((source, id)) if !deal.trim().starts_with(WORKFLOW_ID_PREFIX) => {
            (source.trim().to_ascii_lowercase(), id.trim().to_owned())
        }
        _ => {
            let rest = &workflow_id[WORKFLOW_ID_PREFIX.len()..];
            let (source, id) = rest.split_once('-').unwrap_or((rest, ""));
            (source.to_owned(), id.to_owned())
        }
    };
    Ok(Target {
        workflow_id,
        source,
        deal_id,
    })
}

/// The largest bundle accepted: far above any real deal, and well under the
/// payload size Temporal warns about (512 KiB) or refuses (2 MiB).
pub(crate) const MAX_BUNDLE_BYTES: u64 = 256 * 1024;

/// Reads a bundle from a file or standard input and validates it.
pub(crate) fn read_bundle(file: &Path) -> anyhow::Result<ValidBundle> {
    let (name, text) = if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .take(MAX_BUNDLE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| Exit::data(format!("cannot read standard input: {e}")))?;
        ("standard input".to_owned(), text)
    } else {
        let mut text = String::new();
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_BUNDLE_BYTES + 1).read_to_string(&mut text))
            .map_err(|e| Exit::data(format!("cannot read {}: {e}", file.display())))?;
        (file.display().to_string(), text)
    };
    if text.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(Exit::data(format!(
            "{name} is larger than {} KiB, more than a bundle can be (Temporal refuses large \
             payloads); nothing was sent",
            MAX_BUNDLE_BYTES / 1024
        )));
    }
    let bundle = ValidBundle::from_json(&text)
        .map_err(|e| Exit::data(format!("invalid bundle in {name}: {e}; nothing was sent")))?;
    admit(&bundle)
        .map_err(|e| Exit::data(format!("invalid bundle in {name}: {e}; nothing was sent")))?;
    Ok(bundle)
}

/// What the clients refuse beyond the handoff's own checks: values the
/// handoff would quietly replace (an unknown segment falls back to the
/// amount's) or that no deal has (a negative amount).
pub(crate) fn admit(bundle: &ValidBundle) -> Result<(), String> {
    let deal = &bundle.bundle.deal;
    if let Some(segment) = deal.segment.as_deref().map(str::trim)
        && !segment.is_empty()
        && !handoff_workflows::playbook::SEGMENTS.contains(&segment)
    {
        return Err(format!(
            "deal.segment: {segment:?} is not one of {}",
            handoff_workflows::playbook::SEGMENTS.join(", ")
        ));
    }
    if deal.amount.is_some_and(|a| a < 0.0) {
        return Err("deal.amount: must not be negative".to_owned());
    }
    // An unknown zone would fall back to the default one and put every
    // deadline at another hour than the team's.
    for (field, zone) in [
        ("team.timezone", bundle.bundle.team.timezone.as_deref()),
        (
            "customer.timezone",
            bundle.bundle.customer.timezone.as_deref(),
        ),
    ] {
        if let Some(zone) = zone.map(str::trim).filter(|z| !z.is_empty())
            && handoff_workflows::bundle::parse_timezone(zone).is_none()
        {
            return Err(format!(
                "{field}: {zone:?} is not an IANA time zone (e.g. America/New_York, Europe/Berlin)"
            ));
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct StartReport<'a> {
    workflow_id: &'a str,
    run_id: Option<&'a str>,
    started: bool,
}

/// What the handoff would refuse of `signal` with `payload`, found before
/// anything is sent: its own decoder, with a business now that no `at` can
/// pass (a time-scaled handoff runs ahead of the wall clock), and for a
/// `closed_won`, [`admit`] on its bundle.
pub(crate) fn check_signal(
    signal: &str,
    payload: &serde_json::Value,
    workflow_id: &str,
) -> Result<(), String> {
    handoff_workflows::message::decode(
        signal,
        Some(payload.clone()),
        DateTime::<Utc>::MAX_UTC,
        workflow_id,
    )?;
    if signal == "closed_won"
        && let Ok(bundle) = ValidBundle::from_value(payload["bundle"].clone())
    {
        admit(&bundle).map_err(|e| format!("bundle.{e}"))?;
    }
    Ok(())
}

/// `handoff deal start`.
pub(crate) async fn start(
    courier: &Courier,
    bundle: ValidBundle,
    json: bool,
) -> anyhow::Result<()> {
    let target = target_of(&bundle);
    let payload = serde_json::json!({ "bundle": bundle.bundle });
    let delivered = courier
        .deliver(&target, "closed_won", &payload, Some(&bundle), None)
        .await?;
    let (run_id, started) = match &delivered {
        Delivered::Running { run_id, started } => {
            (Some(run_id.as_str()).filter(|r| !r.is_empty()), *started)
        }
        Delivered::Finished => (None, false),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string(&StartReport {
                workflow_id: &target.workflow_id,
                run_id,
                started
            })?
        );
    } else {
        println!("{}", target.workflow_id);
        match delivered {
            Delivered::Finished => eprintln!("this handoff already finished; nothing was sent"),
            Delivered::Running { started: true, .. } => eprintln!("handoff started"),
            Delivered::Running { started: false, .. } => {
                eprintln!("handoff already running; bundle sent as an amendment")
            }
        }
    }
    Ok(())
}

/// `handoff deal signal`.
pub(crate) async fn signal(
    courier: &Courier,
    deal: &str,
    name: &str,
    data: Option<&str>,
) -> anyhow::Result<()> {
    if !SIGNAL_NAMES.contains(&name) {
        return Err(Exit::config(format!(
            "unknown signal {name:?}; signals are: {}",
            SIGNAL_NAMES.join(", ")
        )));
    }
    let payload: serde_json::Value = match data {
        None => serde_json::json!({}),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| Exit::data(format!("--data is not JSON: {e}; nothing was sent")))?,
    };
    if !payload.is_object() {
        return Err(Exit::data(
            "--data must be a JSON object, e.g. '{\"at\": \"2026-03-04T15:00:00Z\"}'; nothing was sent",
        ));
    }
    let target = target_of_ref(deal)?;
    check_signal(name, &payload, &target.workflow_id)
        .map_err(|e| Exit::data(format!("{name}: {e}; nothing was sent")))?;
    match courier.deliver(&target, name, &payload, None, None).await? {
        Delivered::Finished => {
            eprintln!("{} already finished; nothing was sent", target.workflow_id);
        }
        Delivered::Running { started, .. } => {
            println!("{}", target.workflow_id);
            if started {
                eprintln!("handoff started by {name}; it waits for the closed_won bundle");
            }
        }
    }
    Ok(())
}

/// `handoff deal update`: validated changes to the schedule.
pub(crate) async fn update(
    client: &Client,
    deal: &str,
    name: &str,
    data: &str,
    json: bool,
) -> anyhow::Result<()> {
    if !UPDATE_NAMES.contains(&name) {
        return Err(Exit::config(format!(
            "unknown update {name:?}; updates are: {}",
            UPDATE_NAMES.join(", ")
        )));
    }
    let payload: serde_json::Value = serde_json::from_str(data)
        .map_err(|e| Exit::data(format!("--data is not JSON: {e}; nothing was sent")))?;
    // The same decoding the workflow's validator runs, so a typo is caught
    // here with the field named and nothing sent.
    decode_update(name, Some(payload.clone()))
        .map_err(|reason| Exit::data(format!("{reason}; nothing was sent")))?;
    let target = target_of_ref(deal)?;
    match temporal::execute_update(client, &target.workflow_id, name, &payload).await? {
        UpdateOutcome::Applied(status) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("{name} applied to {}", target.workflow_id);
                print_status(&status);
            }
            Ok(())
        }
        UpdateOutcome::Rejected(reason) => Err(Exit::runtime(format!(
            "{name} rejected: {}",
            crate::terminal::clean(&reason)
        ))),
    }
}

/// `handoff deal status`.
pub(crate) async fn status(client: &Client, deal: &str, json: bool) -> anyhow::Result<()> {
    let target = target_of_ref(deal)?;
    let status = temporal::query_status(client, &target.workflow_id).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_status(&status);
    }
    Ok(())
}

fn print_status(status: &Status) {
    let instant = |t: Option<DateTime<Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
        )
    };
    println!(
        "{}  ({}:{})",
        clean(&status.workflow_id),
        clean(&status.source),
        clean(&status.deal_id)
    );
    println!("  stage          {}", status.stage);
    if let Some(reason) = &status.cancel_reason {
        println!("  cancelled      {reason}");
    }
    println!(
        "  segment        {}",
        status.segment.as_deref().unwrap_or("-")
    );
    println!(
        "  owner          {}",
        clean(status.owner.as_deref().unwrap_or("-"))
    );
    println!(
        "  at risk        {}",
        if status.at_risk { "yes" } else { "no" }
    );
    if let Some(completeness) = status.bundle_completeness {
        println!("  bundle         {:.0}% complete", completeness * 100.0);
    }
    println!(
        "  business now   {} (time scale {})",
        status
            .business_now
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        status.time_scale
    );
    for (name, gate) in &status.gates {
        let mut line = format!("  gate {name:<10}{}", gate.status);
        if let Some(due) = gate.due_at {
            line.push_str(&format!(" due {}", instant(Some(due))));
        }
        if let Some(at) = gate.passed_at {
            line.push_str(&format!(" passed {}", instant(Some(at))));
        }
        if let Some(level) = gate.escalation_level.filter(|l| *l > 0) {
            line.push_str(&format!(" escalation {level}"));
        }
        println!("{line}");
    }
    if let Some(pause) = &status.paused {
        let kinds: Vec<String> = pause
            .kinds
            .iter()
            .filter_map(|k| serde_json::to_value(k).ok())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        println!(
            "  paused         {} since {}{}",
            kinds.join(", "),
            instant(Some(pause.since)),
            pause
                .reason
                .as_deref()
                .map(|r| format!(" ({})", clean(r)))
                .unwrap_or_default()
        );
    }
    println!("  day 0          {}", instant(status.day0));
    for milestone in &status.milestones {
        let status_text = serde_json::to_value(milestone.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        println!(
            "  milestone      {} {} due {} met {} escalation {}",
            milestone.name,
            status_text,
            milestone.due_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            instant(milestone.met_at),
            milestone.escalation_level
        );
    }
    match &status.next_deadline {
        Some(deadline) => println!(
            "  next deadline  {} at {}",
            deadline.summary(),
            deadline.at.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        None => println!("  next deadline  -"),
    }
    let t = status.tasks;
    println!(
        "  tasks          created {}, open {} ({} blocked), done {}, cancelled {}",
        t.created, t.open, t.blocked, t.done, t.cancelled
    );
    println!(
        "  notifications  sent {}, failed {}",
        status.notifications.sent, status.notifications.failed
    );
    println!("  rejected       {}", status.rejected_events.total);
    for event in &status.rejected_events.recent {
        println!(
            "    {} {}: {}",
            event.received_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            clean(&event.signal),
            clean(&event.reason)
        );
    }
    for failure in &status.delivery_failures {
        println!(
            "  failed         {}: {}",
            clean(&failure.key),
            clean(&failure.detail)
        );
    }
}

/// One row of `handoff deal list --json`.
#[derive(Debug, Serialize)]
struct ListedHandoff {
    workflow_id: String,
    deal_id: String,
    source: String,
    stage: Option<String>,
    segment: Option<String>,
    owner: Option<String>,
    at_risk: bool,
    next_deadline: Option<DateTime<Utc>>,
}

/// `handoff deal list`.
pub(crate) async fn list(client: &Client, args: &ListArgs) -> anyhow::Result<()> {
    let query = list_query(args, Utc::now())?;
    let mut stream = client.list_workflows(query, WorkflowListOptions::default());
    let mut rows = Vec::new();
    while let Some(execution) = stream.next().await {
        let execution =
            execution.map_err(|e| Exit::runtime(format!("listing handoffs failed: {e}")))?;
        let attributes = execution.search_attributes();
        let text = |key: &SearchAttributeKey<String>| attributes.get(key);
        rows.push(ListedHandoff {
            workflow_id: execution.id().to_owned(),
            deal_id: text(&DEAL_ID).unwrap_or_default(),
            source: text(&DEAL_SOURCE).unwrap_or_default(),
            stage: text(&HANDOFF_STAGE),
            segment: text(&SEGMENT),
            owner: text(&HANDOFF_OWNER),
            at_risk: attributes.get(&AT_RISK).unwrap_or(false),
            // A finished handoff keeps its last NextDeadline; it waits for nothing.
            next_deadline: attributes
                .get(&NEXT_DEADLINE)
                .and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds(), t.nanos().max(0) as u32))
                .filter(|_| {
                    !matches!(
                        text(&HANDOFF_STAGE).as_deref(),
                        Some("completed" | "cancelled")
                    )
                }),
        });
    }
    // Soonest deadline first; handoffs with none last, then by id for a stable order.
    rows.sort_by(|a, b| {
        (a.next_deadline.is_none(), a.next_deadline, &a.workflow_id).cmp(&(
            b.next_deadline.is_none(),
            b.next_deadline,
            &b.workflow_id,
        ))
    });
    let found = rows.len();
    rows.truncate(args.limit);
    if found > rows.len() {
        eprintln!(
            "showing the {} soonest of {found} handoffs; --limit {found} shows them all",
            rows.len()
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.workflow_id.clone(),
                r.stage.clone().unwrap_or_default(),
                r.segment.clone().unwrap_or_default(),
                r.owner.clone().unwrap_or_default(),
                if r.at_risk { "yes".into() } else { "".into() },
                r.next_deadline
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    print_table(
        &[
            "WORKFLOW ID",
            "STAGE",
            "SEGMENT",
            "OWNER",
            "AT RISK",
            "NEXT DEADLINE",
        ],
        &table,
    );
    Ok(())
}

/// The visibility query for `deal list`; filter values are checked so they
/// cannot change the query's meaning.
fn list_query(args: &ListArgs, now: DateTime<Utc>) -> anyhow::Result<String> {
    let mut clauses = vec![format!("WorkflowType = '{WORKFLOW_TYPE}'")];
    if !args.all {
        clauses.push("ExecutionStatus = 'Running'".to_owned());
    }
    for (attribute, flag, value) in [
        ("HandoffStage", "--stage", &args.stage),
        ("Segment", "--segment", &args.segment),
        ("HandoffOwner", "--owner", &args.owner),
    ] {
        if let Some(value) = value {
            if value.is_empty()
                || !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(Exit::config(format!(
                    "{flag} {value:?}: use letters, digits, '_', '-' or '.'"
                )));
            }
            clauses.push(format!("{attribute} = '{value}'"));
        }
    }
    const STAGES: [&str; 6] = [
        "awaiting_bundle",
        "awaiting_gates",
        "kickoff",
        "onboarding",
        "completed",
        "cancelled",
    ];
    for (flag, value, known) in [
        ("--stage", &args.stage, &STAGES[..]),
        (
            "--segment",
            &args.segment,
            &handoff_workflows::playbook::SEGMENTS[..],
        ),
    ] {
        if let Some(value) = value
            && !known.contains(&value.as_str())
        {
            return Err(Exit::config(format!(
                "{flag} {value:?}: use one of {}",
                known.join(", ")
            )));
        }
    }
    if args.at_risk {
        clauses.push("AtRisk = true".to_owned());
    }
    if let Some(within) = args.due_within {
        let until = now
            + chrono::Duration::from_std(within)
                .map_err(|_| Exit::config("--due-within is too long"))?;
        clauses.push(format!(
            "NextDeadline <= '{}'",
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    Ok(clauses.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ListArgs {
        ListArgs {
            all: false,
            limit: 100,
            stage: None,
            segment: None,
            owner: None,
            at_risk: false,
            due_within: None,
            json: false,
        }
    }

    #[test]
    fn list_filters_become_visibility_clauses() {
        let mut a = args();
        a.stage = Some("kickoff".into());
        a.at_risk = true;
        a.due_within = Some(std::time::Duration::from_secs(3600));
        let now = DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            list_query(&a, now).unwrap(),
            "WorkflowType = 'DealHandoff' AND ExecutionStatus = 'Running' AND HandoffStage = 'kickoff' \
             AND AtRisk = true AND NextDeadline <= '2026-03-02T01:00:00Z'"
        );
    }

    #[test]
    fn filter_values_cannot_inject_query_text() {
        let mut a = args();
        a.owner = Some("x' OR 'a'='a".into());
        assert!(list_query(&a, Utc::now()).is_err());
    }

    #[test]
    fn unknown_stages_and_segments_are_refused_not_matched_against_nothing() {
        let mut a = args();
        a.stage = Some("bogus".into());
        let error = list_query(&a, Utc::now()).unwrap_err().to_string();
        assert!(error.contains("awaiting_gates"), "{error}");
        a.stage = None;
        a.segment = Some("giant".into());
        assert!(list_query(&a, Utc::now()).is_err());
        a.segment = Some("mid_market".into());
        assert!(list_query(&a, Utc::now()).is_ok());
    }

    #[test]
    fn deal_refs_resolve_to_targets() {
        let target = target_of_ref("salesforce:001A0000006Vm9r").unwrap();
        assert_eq!(target.workflow_id, "handoff-salesforce-001A0000006Vm9rIAC");
        assert_eq!(target.deal_id, "001A0000006Vm9r");
        let target = target_of_ref("handoff-manual-DEMO-1").unwrap();
        assert_eq!(
            (target.source.as_str(), target.deal_id.as_str()),
            ("manual", "DEMO-1")
        );
    }
}
