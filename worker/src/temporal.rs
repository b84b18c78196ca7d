//! Talking to Temporal: the connection, event delivery, the status query and
//! visibility listing.
//!
//! Events go out as raw gRPC requests rather than through the typed client,
//! because only the raw signal-with-start response says whether this call
//! created the workflow — the one answer that stays correct when two clients
//! race to start the same deal.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use temporalio_client::envconfig::LoadClientConfigProfileOptions;
use temporalio_client::errors::WorkflowUpdateError;
use temporalio_client::grpc::{OperatorService, WorkflowService};
use temporalio_client::tonic::{Code, IntoRequest, Status as GrpcStatus};
use temporalio_client::{
    Client, ClientOptions, Connection, NamespacedClient, WorkflowExecuteUpdateOptions,
    WorkflowQueryOptions,
};
use temporalio_common::data_converters::RawValue;
use temporalio_common::protos::temporal::api::common::v1::{
    Header, Payload, Payloads, SearchAttributes, WorkflowExecution, WorkflowType,
};
use temporalio_common::protos::temporal::api::enums::v1::{
    EventType, IndexedValueType, TaskQueueKind, TaskQueueType, WorkflowIdConflictPolicy,
    WorkflowIdReusePolicy,
};
use temporalio_common::protos::temporal::api::operatorservice::v1::ListSearchAttributesRequest;
use temporalio_common::protos::temporal::api::sdk::v1::UserMetadata;
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeTaskQueueRequest, DescribeWorkflowExecutionRequest, GetSystemInfoRequest,
    GetWorkflowExecutionHistoryRequest, SignalWithStartWorkflowExecutionRequest,
    SignalWorkflowExecutionRequest,
};

use handoff_workflows::deal_handoff::{
    DealHandoffWorkflow, HandoffInput, SEARCH_ATTRIBUTES, SENT_AT_HEADER, WORKFLOW_TYPE,
};
use handoff_workflows::status::Status;

use crate::codec::Keys;
use crate::exit::Exit;

/// Connects with the SDK's envconfig, or to `address` when given.
pub(crate) async fn connect(address: Option<&str>) -> anyhow::Result<Client> {
    let (mut connection, mut client_options) =
        ClientOptions::load_from_config(LoadClientConfigProfileOptions::default())
            .map_err(|e| Exit::config(format!("invalid Temporal client configuration: {e}")))?;
    if let Some(address) = address {
        connection.target = format!("http://{address}")
            .parse()
            .context("dev server address")?;
    }
    connection.connect_timeout = Some(Duration::from_secs(5));
    let target = connection.target.to_string();
    let connection = Connection::connect(connection).await.map_err(|e| {
        Exit::runtime(format!(
            "cannot reach Temporal at {target}: {e}\n  start a local server with `handoff dev`, or point TEMPORAL_ADDRESS at yours"
        ))
    })?;
    if let Some(keys) = CODEC.get() {
        client_options.data_converter = keys.data_converter();
    }
    Client::new(connection, client_options).context("creating the Temporal client")
}

/// A deal's handoff as the clients address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) workflow_id: String,
    pub(crate) source: String,
    pub(crate) deal_id: String,
}

/// What signal-with-start needs beyond the signal itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct StartOptions {
    pub(crate) task_queue: String,
    pub(crate) time_scale: u32,
    /// History length at which the handoff continues as new.
    pub(crate) max_history_events: Option<u32>,
    /// Static summary shown in Temporal UI.
    pub(crate) summary: Option<String>,
    /// Search attributes set at start: (name, type, JSON value).
    pub(crate) search_attributes: Vec<(&'static str, &'static str, serde_json::Value)>,
    /// Another workflow type and its input, instead of `DealHandoff` (the
    /// benchmark's yardstick).
    pub(crate) other_workflow: Option<(String, serde_json::Value)>,
    /// The request id Temporal de-duplicates on: the same id twice starts
    /// and signals once. A fresh one per call when `None`.
    pub(crate) request_id: Option<String>,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// The handoff is running and got the signal; `started` when this call created it.
    Running { run_id: String, started: bool },
    /// The handoff already finished; nothing was sent.
    Finished,
}

/// Signal-with-start: creates the handoff unless it exists, then signals it.
///
/// The id reuse policy rejects a new run once a handoff has closed, so a late
/// event never restarts a finished handoff.
pub(crate) async fn signal_with_start(
    client: &Client,
    target: &Target,
    signal: &str,
    payload: &serde_json::Value,
    options: &StartOptions,
) -> anyhow::Result<Delivered> {
    let mut input = HandoffInput::new(
        target.source.clone(),
        target.deal_id.clone(),
        options.time_scale,
    );
    input.max_history_events = options.max_history_events;
    let (workflow_type, input) = match &options.other_workflow {
        Some((name, input)) => (name.clone(), input.clone()),
        None => (WORKFLOW_TYPE.to_owned(), serde_json::to_value(&input)?),
    };
    let request = SignalWithStartWorkflowExecutionRequest {
        namespace: client.namespace(),
        workflow_id: target.workflow_id.clone(),
        workflow_type: Some(WorkflowType {
            name: workflow_type,
        }),
        task_queue: Some(TaskQueue {
            name: options.task_queue.clone(),
            kind: TaskQueueKind::Normal as i32,
            ..Default::default()
        }),
        input: Some(Payloads {
            payloads: vec![sealed(json_payload(&input))],
        }),
        identity: client.identity(),
        request_id: options
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        workflow_id_reuse_policy: WorkflowIdReusePolicy::RejectDuplicate as i32,
        workflow_id_conflict_policy: WorkflowIdConflictPolicy::UseExisting as i32,
        signal_name: signal.to_owned(),
        header: Some(sent_at_header()),
        signal_input: Some(Payloads {
            payloads: vec![sealed(json_payload(payload))],
        }),
        search_attributes: Some(search_attributes(&options.search_attributes)),
        user_metadata: options.summary.as_ref().map(|s| UserMetadata {
            summary: Some(json_payload(&serde_json::Value::String(s.clone()))),
            details: None,
        }),
        ..Default::default()
    };
    let mut raw = client.clone();
    match WorkflowService::signal_with_start_workflow_execution(&mut raw, request.into_request())
        .await
    {
        Ok(response) => {
            let response = response.into_inner();
            Ok(Delivered::Running {
                run_id: response.run_id,
                started: response.started,
            })
        }
        Err(status) if status.code() == Code::AlreadyExists => Ok(Delivered::Finished),
        Err(status) => Err(grpc_error(status, "signal-with-start")),
    }
}

/// Signals a handoff that must already exist; a second call with the same
/// `request_id` is taken by Temporal and dropped, so a sender that lost
/// track of an earlier attempt does not signal twice. `None` makes every
/// call its own.
pub(crate) async fn signal(
    client: &Client,
    workflow_id: &str,
    signal: &str,
    payload: &serde_json::Value,
    request_id: Option<&str>,
) -> anyhow::Result<Delivered> {
    let request = SignalWorkflowExecutionRequest {
        namespace: client.namespace(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: workflow_id.to_owned(),
            run_id: String::new(),
        }),
        signal_name: signal.to_owned(),
        input: Some(Payloads {
            payloads: vec![sealed(json_payload(payload))],
        }),
        identity: client.identity(),
        request_id: request_id
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        header: Some(sent_at_header()),
        ..Default::default()
    };
    let mut raw = client.clone();
    match WorkflowService::signal_workflow_execution(&mut raw, request.into_request()).await {
        Ok(_) => Ok(Delivered::Running {
            run_id: String::new(),
            started: false,
        }),
        Err(status) if status.code() == Code::NotFound => Ok(Delivered::Finished),
        Err(status) => Err(grpc_error(status, "signal")),
    }
}

/// The events of a workflow's history (its latest run): type and time.
pub(crate) async fn history_event_types(
    client: &Client,
    workflow_id: &str,
) -> anyhow::Result<Vec<(EventType, Option<std::time::SystemTime>)>> {
    let mut raw = client.clone();
    let mut types = Vec::new();
    let mut token = Vec::new();
    loop {
        let request = GetWorkflowExecutionHistoryRequest {
            namespace: client.namespace(),
            execution: Some(WorkflowExecution {
                workflow_id: workflow_id.to_owned(),
                run_id: String::new(),
            }),
            maximum_page_size: 1000,
            next_page_token: token,
            ..Default::default()
        };
        let response =
            WorkflowService::get_workflow_execution_history(&mut raw, request.into_request())
                .await
                .map_err(|s| grpc_error(s, "reading a history"))?
                .into_inner();
        for event in response.history.map(|h| h.events).unwrap_or_default() {
            let kind = EventType::try_from(event.event_type).unwrap_or(EventType::Unspecified);
            let at = event
                .event_time
                .and_then(|t| std::time::SystemTime::try_from(t).ok());
            types.push((kind, at));
        }
        if response.next_page_token.is_empty() {
            return Ok(types);
        }
        token = response.next_page_token;
    }
}

/// Runs the `status` query.
pub(crate) async fn query_status(client: &Client, workflow_id: &str) -> anyhow::Result<Status> {
    let handle = client.get_workflow_handle::<DealHandoffWorkflow>(workflow_id);
    let query = handle.query(
        DealHandoffWorkflow::status,
        (),
        WorkflowQueryOptions::default(),
    );
    let text = match tokio::time::timeout(WORKER_WAIT, query).await {
        Ok(Ok(status)) => return Ok(status),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer".to_owned(),
    };
    if text.contains("not found") || text.contains("NotFound") {
        return Err(Exit::runtime(format!(
            "no handoff {workflow_id}: check the id with `handoff deal list --all`"
        )));
    }
    let hint = worker_hint(client, workflow_id).await.unwrap_or_default();
    Err(Exit::runtime(format!(
        "status query for {workflow_id} failed: {text}{hint}"
    )))
}

/// Whether the server answers now: a connected client stays connected
/// while the server is gone, so readiness asks.
pub(crate) async fn reachable(client: &Client) -> bool {
    let mut raw = client.clone();
    let ask = WorkflowService::get_system_info(&mut raw, GetSystemInfoRequest {}.into_request());
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ask).await,
        Ok(Ok(_))
    )
}

/// How long a query or an update waits for a worker to answer.
const WORKER_WAIT: Duration = Duration::from_secs(20);

/// `"; no worker polls task queue Q: …"` when the handoff's task queue has
/// no worker, the usual reason a query or an update gets no answer.
async fn worker_hint(client: &Client, workflow_id: &str) -> Option<String> {
    let mut raw = client.clone();
    let described = WorkflowService::describe_workflow_execution(
        &mut raw,
        DescribeWorkflowExecutionRequest {
            namespace: client.namespace(),
            execution: Some(WorkflowExecution {
                workflow_id: workflow_id.to_owned(),
                run_id: String::new(),
            }),
        }
        .into_request(),
    )
    .await
    .ok()?
    .into_inner();
    let queue = described.execution_config?.task_queue?.name;
    let pollers = WorkflowService::describe_task_queue(
        &mut raw,
        DescribeTaskQueueRequest {
            namespace: client.namespace(),
            task_queue: Some(TaskQueue {
                name: queue.clone(),
                kind: TaskQueueKind::Normal as i32,
                normal_name: String::new(),
            }),
            task_queue_type: TaskQueueType::Workflow as i32,
            ..Default::default()
        }
        .into_request(),
    )
    .await
    .ok()?
    .into_inner()
    .pollers;
    pollers.is_empty().then(|| {
        format!(
            "; no worker polls task queue {queue}: start one (`handoff worker`, or `make run` \
             locally). Signals wait for a worker; queries and updates need one running"
        )
    })
}

/// What became of an update.
#[derive(Debug)]
pub(crate) enum UpdateOutcome {
    /// Applied; the handoff's status after it.
    Applied(Box<Status>),
    /// The validator refused it; nothing changed.
    Rejected(String),
}

/// Sends a validated update and waits for its outcome.
pub(crate) async fn execute_update(
    client: &Client,
    workflow_id: &str,
    name: &str,
    payload: &serde_json::Value,
) -> anyhow::Result<UpdateOutcome> {
    let handle = client.get_workflow_handle::<DealHandoffWorkflow>(workflow_id);
    let input = RawValue::new(vec![json_payload(payload)]);
    let options = WorkflowExecuteUpdateOptions::builder()
        .header(sent_at_header())
        .build();
    let update = async {
        match name {
            "extend_deadline" => {
                handle
                    .execute_update(DealHandoffWorkflow::extend_deadline, input, options)
                    .await
            }
            "waive_milestone" => {
                handle
                    .execute_update(DealHandoffWorkflow::waive_milestone, input, options)
                    .await
            }
            "reassign_owner" => {
                handle
                    .execute_update(DealHandoffWorkflow::reassign_owner, input, options)
                    .await
            }
            other => Err(WorkflowUpdateError::Other(
                anyhow::anyhow!("unknown update {other:?}").into(),
            )),
        }
    };
    let Ok(result) = tokio::time::timeout(WORKER_WAIT, update).await else {
        let hint = worker_hint(client, workflow_id).await.unwrap_or_default();
        return Err(Exit::runtime(format!(
            "update {name} for {workflow_id} got no answer within {} s; check with \
             `handoff deal status` whether it applied{hint}",
            WORKER_WAIT.as_secs()
        )));
    };
    match result {
        Ok(status) => Ok(UpdateOutcome::Applied(Box::new(status))),
        Err(WorkflowUpdateError::Failed(failure)) => Ok(UpdateOutcome::Rejected(failure.message)),
        Err(WorkflowUpdateError::NotFound(_)) => Err(Exit::runtime(format!(
            "no running handoff {workflow_id}: check the id with `handoff deal list --all`"
        ))),
        Err(other) => Err(Exit::runtime(format!(
            "update {name} for {workflow_id} failed: {other}"
        ))),
    }
}

/// A search attribute the worker needs that the namespace lacks, or has
/// with another type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttributeProblem {
    pub(crate) name: &'static str,
    pub(crate) kind: &'static str,
    /// The type the namespace has it with, when it has it.
    pub(crate) found: Option<String>,
}

/// Search attributes the worker needs that the namespace lacks or types wrongly.
pub(crate) async fn missing_search_attributes(
    client: &Client,
) -> anyhow::Result<Vec<AttributeProblem>> {
    let mut raw = client.clone();
    let request = ListSearchAttributesRequest {
        namespace: client.namespace(),
    };
    let response = OperatorService::list_search_attributes(&mut raw, request.into_request())
        .await
        .map_err(|s| grpc_error(s, "listing search attributes"))?
        .into_inner();
    let registered: HashMap<String, i32> = response.custom_attributes.into_iter().collect();
    Ok(SEARCH_ATTRIBUTES
        .iter()
        .filter_map(|&(name, kind)| {
            let found = registered.get(name).copied();
            (found != Some(indexed_type(kind) as i32)).then(|| AttributeProblem {
                name,
                kind,
                found: found.map(type_name),
            })
        })
        .collect())
}

/// The name the CLI uses for an indexed value type.
fn type_name(value: i32) -> String {
    IndexedValueType::try_from(value).map_or_else(
        |_| format!("type {value}"),
        |t| {
            t.as_str_name()
                .trim_start_matches("INDEXED_VALUE_TYPE_")
                .to_owned()
        },
    )
}

fn indexed_type(kind: &str) -> IndexedValueType {
    match kind {
        "Keyword" => IndexedValueType::Keyword,
        "Bool" => IndexedValueType::Bool,
        "Int" => IndexedValueType::Int,
        "Datetime" => IndexedValueType::Datetime,
        "Double" => IndexedValueType::Double,
        _ => IndexedValueType::Unspecified,
    }
}

/// The header that tells the workflow when a signal or update was sent, so
/// that an event sent before a deadline counts as before it, however late a
/// worker gets to it.
fn sent_at_header() -> Header {
    let now = chrono::Utc::now().timestamp_millis();
    Header {
        fields: HashMap::from([(
            SENT_AT_HEADER.to_owned(),
            json_payload(&serde_json::json!(now)),
        )]),
    }
}

static CODEC: OnceLock<Keys> = OnceLock::new();

/// Encrypts every payload this process sends or receives with `keys`; set
/// once at start-up, before the first connection.
pub(crate) fn use_codec(keys: Keys) {
    // A second call keeps the first keys; start-up makes only one.
    let _ = CODEC.set(keys);
}

/// A payload sent through raw gRPC, encrypted when a codec is in use (the
/// typed client applies it by itself).
fn sealed(payload: Payload) -> Payload {
    match CODEC.get() {
        Some(keys) => keys.encrypt(&payload),
        None => payload,
    }
}

fn json_payload(value: &serde_json::Value) -> Payload {
    Payload {
        metadata: HashMap::from([("encoding".to_owned(), b"json/plain".to_vec())]),
        data: serde_json::to_vec(value).expect("JSON values serialise"),
        ..Default::default()
    }
}

fn search_attributes(
    values: &[(&'static str, &'static str, serde_json::Value)],
) -> SearchAttributes {
    let indexed_fields = values
        .iter()
        .map(|(name, kind, value)| {
            let mut payload = json_payload(value);
            payload
                .metadata
                .insert("type".to_owned(), kind.as_bytes().to_vec());
            ((*name).to_owned(), payload)
        })
        .collect();
    SearchAttributes { indexed_fields }
}

fn grpc_error(status: GrpcStatus, what: &str) -> anyhow::Error {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded => Exit::runtime(format!(
            "Temporal is unavailable ({what}): {}\n  is the server running? `handoff dev` starts a local one",
            status.message()
        )),
        _ => Exit::runtime(format!(
            "{what} failed: {} ({:?})",
            status.message(),
            status.code()
        )),
    }
}
