//! `handoff tasks list` and `handoff notifications list`: reading the ledger.

use handoff_activities::ledger::Ledger;

use crate::deals::target_of_ref;
use crate::terminal::print_table;

/// `handoff tasks list`.
pub(crate) async fn tasks(ledger: &Ledger, deal: Option<&str>, json: bool) -> anyhow::Result<()> {
    let workflow_id = deal.map(target_of_ref).transpose()?.map(|t| t.workflow_id);
    let rows = ledger.list_tasks(workflow_id.as_deref()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|t| {
            vec![
                t.deal.clone(),
                t.key.clone(),
                t.status.clone(),
                t.owner.clone(),
                t.due_at.clone(),
                t.depends_on.join(","),
                t.title.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "DEAL",
            "KEY",
            "STATUS",
            "OWNER",
            "DUE",
            "DEPENDS ON",
            "TITLE",
        ],
        &table,
    );
    Ok(())
}

/// `handoff notifications list`.
pub(crate) async fn notifications(
    ledger: &Ledger,
    deal: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let workflow_id = deal.map(target_of_ref).transpose()?.map(|t| t.workflow_id);
    let rows = ledger.list_notifications(workflow_id.as_deref()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|n| {
            vec![
                n.created_at.clone(),
                n.deal.clone(),
                n.kind.clone(),
                n.owner.clone(),
                n.status.clone(),
                n.title.clone(),
            ]
        })
        .collect();
    print_table(
        &["RECORDED", "DEAL", "KIND", "TO", "STATUS", "SUBJECT"],
        &table,
    );
    Ok(())
}
