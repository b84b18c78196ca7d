//! `handoff ingress`: the webhook receiver of SPEC §10.
//!
//! Every accepted event becomes a signal (with start) on the deal's handoff
//! through [`Courier::deliver`], then is recorded in the ledger by the
//! source's event id. Recording after Temporal took the signal means a 503
//! (Temporal unreachable) leaves the event retryable, and a retry of an
//! accepted one is answered 2xx as a duplicate. Events of one deal are
//! handled one at a time, so the duplicate check and the order check
//! (a stage change older than the last one applied is late) hold under
//! concurrent deliveries.
//!
//! Sources live in their own modules: [`generic`] (HMAC of the body),
//! [`hubspot`] (v3 signatures, then the deal read from the CRM API) and
//! [`salesforce`] (SOAP Outbound Messages of one organisation).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use temporalio_client::Client;
use tokio::sync::Mutex;
use tracing::{info, warn};

use handoff_activities::ledger::{IngressEvent, Ledger};
use handoff_workflows::bundle::ValidBundle;

use crate::cli::IngressArgs;
use crate::config::Settings;
use crate::deals::Courier;
use crate::exit::Exit;
use crate::temporal::{self, Delivered, Target};

mod generic;
mod hubspot;
mod hubspot_api;
mod metrics;
mod salesforce;

pub(crate) use metrics::IngressMetrics;

/// Default listen address.
pub(crate) const DEFAULT_INGRESS_ADDR: &str = "127.0.0.1:8088";
/// Where the HubSpot CRM API lives.
const DEFAULT_HUBSPOT_API_URL: &str = "https://api.hubapi.com";
/// Locks striping the deals, so one deal's events are handled in turn.
const DEAL_LOCKS: usize = 64;

/// What the receiver was configured with; secrets come from the environment.
#[derive(Debug, Clone)]
pub(crate) struct IngressConfig {
    pub(crate) listen: SocketAddr,
    /// Key of `X-Handoff-Signature` on `/webhooks/generic`; `None` refuses every call.
    pub(crate) secret: Option<String>,
    /// `HANDOFF_INGRESS_PUBLIC_URL`, without a trailing slash.
    pub(crate) public_url: Option<String>,
    /// HubSpot's v3 signature key; `None` refuses every HubSpot call.
    pub(crate) hubspot_client_secret: Option<String>,
    /// Bearer token of the HubSpot CRM API.
    pub(crate) hubspot_token: Option<String>,
    /// Base URL of the HubSpot CRM API, without a trailing slash.
    pub(crate) hubspot_api_url: String,
    /// The HubSpot portal whose events are taken; `None` takes any.
    pub(crate) hubspot_portal_id: Option<u64>,
    /// Salesforce organisation accepted, in its 18-character form; `None` refuses every call.
    pub(crate) salesforce_org_id: Option<String>,
    /// `?token=` the Salesforce endpoint URL must carry, when set.
    pub(crate) salesforce_token: Option<String>,
}

impl IngressConfig {
    /// Flags and environment over `[ingress]` of the file over defaults.
    pub(crate) fn resolve(args: &IngressArgs, settings: &Settings) -> anyhow::Result<Self> {
        let file = &settings.ingress;
        let listen = match args.listen.or(file.addr) {
            Some(listen) => listen,
            None => DEFAULT_INGRESS_ADDR
                .parse()
                .expect("the default address parses"),
        };
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let url = |name: &str, value: Option<String>| -> anyhow::Result<Option<String>> {
            let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
                return Ok(None);
            };
            let parsed = reqwest::Url::parse(value.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| {
                    Exit::config(format!(
                        "{name}: {value:?} is not an http(s) URL, e.g. https://hooks.example.com"
                    ))
                })?;
            Ok(Some(parsed.as_str().trim_end_matches('/').to_owned()))
        };
        let public_url = url(
            "HANDOFF_INGRESS_PUBLIC_URL",
            args.public_url.clone().or(file.public_url.clone()),
        )?;
        let hubspot_api_url = url(
            "HANDOFF_HUBSPOT_API_URL",
            args.hubspot_api_url
                .clone()
                .or(file.hubspot_api_url.clone()),
        )?
        .unwrap_or_else(|| DEFAULT_HUBSPOT_API_URL.to_owned());
        let salesforce_org_id = match args
            .salesforce_org_id
            .clone()
            .or(file.salesforce_org_id.clone())
            .filter(|v| !v.trim().is_empty())
        {
            Some(id) => Some(
                handoff_workflows::identity::salesforce_id_18(id.trim()).ok_or_else(|| {
                    Exit::config(format!(
                        "HANDOFF_SALESFORCE_ORG_ID: {id:?} is not a Salesforce id \
                         (15 or 18 letters and digits, e.g. 00D5g000004ABCDEAA)"
                    ))
                })?,
            ),
            None => None,
        };
        Ok(Self {
            listen,
            secret: non_empty(&args.secret),
            public_url,
            hubspot_client_secret: non_empty(&args.hubspot_client_secret),
            hubspot_token: non_empty(&args.hubspot_token),
            hubspot_api_url,
            hubspot_portal_id: args.hubspot_portal_id.or(file.hubspot_portal_id),
            salesforce_org_id,
            salesforce_token: non_empty(&args.salesforce_token),
        })
    }
}

/// The receiver's shared state.
pub(crate) struct Ingress {
    config: IngressConfig,
    settings: Settings,
    ledger: Ledger,
    /// Connected on first use, so the receiver starts (and answers 503)
    /// while Temporal is down.
    client: Mutex<Option<Client>>,
    hubspot: hubspot_api::HubSpotApi,
    metrics: IngressMetrics,
    locks: Vec<Mutex<()>>,
}

/// Why a request was refused.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Missing or wrong signature: 401.
    Unauthorized(String),
    /// A body that cannot be used: 400.
    Malformed(String),
    /// Temporal or the CRM API cannot be reached: 503, the sender retries.
    Unavailable(String),
}

impl Refusal {
    fn outcome(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::Malformed(_) => "malformed",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            Self::Malformed(m) => (StatusCode::BAD_REQUEST, m),
            Self::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
        };
        let body = serde_json::json!({ "error": message });
        (status, axum::Json(body)).into_response()
    }
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Delivered to the handoff.
    Accepted,
    /// Seen before, by its event id or an equal stage change.
    Duplicate,
    /// For a finished handoff, or older than the last stage change applied.
    Late,
    /// Nothing for a handoff to do (e.g. a lost deal that never had one).
    Ignored,
    /// An event of a batch that cannot be used; the rest of the batch is
    /// applied (HubSpot, which does not retry a refused batch).
    Invalid,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Late => "late",
            Self::Ignored => "ignored",
            Self::Invalid => "invalid",
        }
    }
}

/// One event, mapped to a signal on a handoff.
pub(crate) struct Delivery<'a> {
    pub(crate) source: &'static str,
    pub(crate) event_id: String,
    pub(crate) target: Target,
    pub(crate) signal: &'a str,
    pub(crate) payload: serde_json::Value,
    pub(crate) bundle: Option<&'a ValidBundle>,
    /// When the change happened, epoch milliseconds.
    pub(crate) occurred_at: i64,
    /// Stage changes are ordered per deal; a late one is not applied.
    pub(crate) ordered: bool,
    /// An ordered event at the very instant of the last one applied is the
    /// same change seen twice (HubSpot sends one change to every matching
    /// subscription); `false` where events are snapshots of the whole record.
    pub(crate) same_instant_is_duplicate: bool,
    /// Only a handoff that exists gets it; nothing is started.
    pub(crate) existing_only: bool,
}

impl Ingress {
    /// Opens the ledger and builds the HTTP client; Temporal is connected later.
    pub(crate) async fn open(config: IngressConfig, settings: Settings) -> anyhow::Result<Self> {
        let ledger = Ledger::open(&settings.database_url).await.map_err(|e| {
            Exit::config(format!(
                "cannot open the ledger {}: {e:#}",
                settings.database_url
            ))
        })?;
        let hubspot =
            hubspot_api::HubSpotApi::new(&config.hubspot_api_url, config.hubspot_token.clone())
                .map_err(|e| Exit::config(format!("cannot build the HubSpot client: {e:#}")))?;
        Ok(Self {
            config,
            settings,
            ledger,
            client: Mutex::new(None),
            hubspot,
            metrics: IngressMetrics::new(),
            locks: (0..DEAL_LOCKS).map(|_| Mutex::new(())).collect(),
        })
    }

    async fn courier(&self) -> Result<Courier, Refusal> {
        let mut client = self.client.lock().await;
        if client.is_none() {
            let connected = temporal::connect(None).await.map_err(|e| {
                warn!(error = %e, "temporal unreachable");
                Refusal::Unavailable("Temporal is unreachable; retry later".to_owned())
            })?;
            *client = Some(connected);
        }
        let client = client.clone().expect("connected above");
        Ok(Courier {
            client,
            ledger: self.ledger.clone(),
            settings: self.settings.clone(),
        })
    }

    /// Whether the source's event was recorded already.
    pub(crate) async fn seen(&self, source: &str, event_id: &str) -> Result<bool, Refusal> {
        self.ledger
            .ingress_event_seen(source, event_id)
            .await
            .map_err(|e| ledger_unavailable(e.into()))
    }

    /// Whether the deal registry knows the handoff.
    pub(crate) async fn known(&self, workflow_id: &str) -> Result<bool, Refusal> {
        self.ledger
            .deal_known(workflow_id)
            .await
            .map_err(|e| ledger_unavailable(e.into()))
    }

    /// The handoff a deal's events reach: the one a merge aliased it to, or its own.
    pub(crate) async fn target(&self, source: &str, deal_id: &str) -> Result<Target, Refusal> {
        let own = handoff_workflows::identity::workflow_id(source, deal_id);
        let workflow_id = self
            .ledger
            .resolve_alias(&own)
            .await
            .map_err(|e| ledger_unavailable(e.into()))?;
        let prefix = format!(
            "{}{source}-",
            handoff_workflows::identity::WORKFLOW_ID_PREFIX
        );
        let deal_id = match workflow_id.strip_prefix(&prefix) {
            Some(id) if workflow_id != own => id.to_owned(),
            _ => deal_id.trim().to_owned(),
        };
        Ok(Target {
            workflow_id,
            source: source.to_owned(),
            deal_id,
        })
    }

    /// Makes events for `alias` reach the handoff `workflow_id`.
    pub(crate) async fn alias(&self, alias: &str, workflow_id: &str) -> Result<(), Refusal> {
        info!(
            alias,
            workflow_id, "deal merged: its events now reach this handoff"
        );
        self.ledger
            .record_alias(alias, workflow_id)
            .await
            .map(|_| ())
            .map_err(|e| ledger_unavailable(e.into()))
    }

    /// Applies one event: the duplicate and order checks, the signal, the record.
    pub(crate) async fn apply(&self, mut delivery: Delivery<'_>) -> Result<Outcome, Refusal> {
        on_this_clock(&mut delivery, chrono::Utc::now())?;
        // Whatever the endpoint, what the handoff would drop is refused
        // here, not acknowledged.
        crate::deals::check_signal(
            delivery.signal,
            &delivery.payload,
            &delivery.target.workflow_id,
        )
        .map_err(|e| Refusal::Malformed(format!("{}: {e}", delivery.signal)))?;
        let lock = &self.locks[stripe(&delivery.target.workflow_id)];
        let _held = lock.lock().await;
        let unavailable = ledger_unavailable;
        if self
            .ledger
            .ingress_event_seen(delivery.source, &delivery.event_id)
            .await
            .map_err(|e| unavailable(e.into()))?
        {
            self.metrics.duplicate(delivery.source);
            return Ok(Outcome::Duplicate);
        }
        let kind = if delivery.ordered {
            "stage"
        } else {
            delivery.signal
        };
        let outcome = self.decide(&delivery, kind).await.map_err(unavailable)?;
        let outcome = match outcome {
            Some(outcome) => outcome,
            None => {
                let courier = self.courier().await?;
                let request_id = request_id(&delivery);
                let delivered = courier
                    .deliver(
                        &delivery.target,
                        delivery.signal,
                        &delivery.payload,
                        delivery.bundle,
                        Some(&request_id),
                    )
                    .await;
                if delivered.is_err() {
                    // A broken connection is made anew on the next event.
                    *self.client.lock().await = None;
                }
                match delivered.map_err(unavailable)? {
                    Delivered::Running { .. } => Outcome::Accepted,
                    Delivered::Finished => Outcome::Late,
                }
            }
        };
        let record = IngressEvent {
            source: delivery.source,
            event_id: &delivery.event_id,
            workflow_id: &delivery.target.workflow_id,
            kind,
            occurred_at: delivery.occurred_at,
            outcome: outcome.as_str(),
        };
        self.ledger
            .record_ingress_event(&record)
            .await
            .map_err(|e| unavailable(e.into()))?;
        match outcome {
            Outcome::Late => self.metrics.late(delivery.source),
            Outcome::Duplicate => self.metrics.duplicate(delivery.source),
            _ => {}
        }
        Ok(outcome)
    }

    /// An outcome reached without Temporal, or `None` to deliver.
    async fn decide(&self, delivery: &Delivery<'_>, kind: &str) -> anyhow::Result<Option<Outcome>> {
        let workflow_id = &delivery.target.workflow_id;
        if delivery.ordered
            && let Some(latest) = self.ledger.latest_ingress_event(workflow_id, kind).await?
        {
            if latest == delivery.occurred_at && delivery.same_instant_is_duplicate {
                return Ok(Some(Outcome::Duplicate));
            }
            if latest > delivery.occurred_at {
                return Ok(Some(Outcome::Late));
            }
        }
        if delivery.existing_only && !self.ledger.deal_known(workflow_id).await? {
            return Ok(Some(Outcome::Ignored));
        }
        Ok(None)
    }

    /// Counts a finished request.
    pub(crate) fn count(&self, source: &str, result: &Result<Vec<Outcome>, Refusal>) {
        match result {
            Ok(outcomes) if outcomes.is_empty() => self.metrics.request(source, "ignored"),
            Ok(outcomes) => {
                for outcome in outcomes {
                    self.metrics.request(source, outcome.as_str());
                }
            }
            Err(refusal) => {
                if matches!(refusal, Refusal::Unauthorized(_)) {
                    self.metrics.signature_failure(source);
                }
                self.metrics.request(source, refusal.outcome());
            }
        }
    }
}

/// How far ahead of this receiver's clock an event's instant may be: the
/// sender's clock running a little fast. Within it the event counts as
/// happening now; beyond it the event is refused.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(2);

/// Holds an event to this receiver's clock. A handoff refuses an instant
/// later than its own now, so an event from a sender whose clock runs a
/// little fast is taken as happening `now`; one further ahead is refused
/// (400) before anything is sent or recorded, so it never becomes the
/// instant later events are ordered against.
fn on_this_clock(
    delivery: &mut Delivery<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Refusal> {
    let now_ms = now.timestamp_millis();
    if delivery.occurred_at <= now_ms {
        return Ok(());
    }
    if delivery.occurred_at > now_ms + CLOCK_SKEW.num_milliseconds() {
        let at = chrono::DateTime::from_timestamp_millis(delivery.occurred_at)
            .map_or_else(|| delivery.occurred_at.to_string(), |at| at.to_rfc3339());
        return Err(Refusal::Malformed(format!(
            "at: {at} is later than this receiver's clock ({}) by more than {} minutes; \
             check the sender's clock",
            now.to_rfc3339(),
            CLOCK_SKEW.num_minutes()
        )));
    }
    delivery.occurred_at = now_ms;
    if let Some(at) = delivery.payload.get_mut("at")
        && at.is_string()
    {
        *at = serde_json::Value::String(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    Ok(())
}

/// The request id of an event's signal: the same event, sent again after
/// its record was lost (a crash between the signal and the record), is
/// dropped by Temporal instead of reaching the handoff twice.
fn request_id(delivery: &Delivery<'_>) -> String {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    for part in [
        delivery.source,
        delivery.event_id.as_str(),
        delivery.target.workflow_id.as_str(),
        delivery.signal,
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!("ingress-{}", hex::encode(&hash.finalize()[..16]))
}

/// A ledger or Temporal failure: 503, so the sender retries.
pub(crate) fn ledger_unavailable(e: anyhow::Error) -> Refusal {
    warn!(error = %format!("{e:#}"), "ingress delivery failed");
    Refusal::Unavailable("the event could not be handed on; retry later".to_owned())
}

fn stripe(workflow_id: &str) -> usize {
    workflow_id.bytes().fold(0usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    }) % DEAL_LOCKS
}

/// Compares two byte strings in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The routes.
pub(crate) fn router(ingress: Arc<Ingress>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
        .route("/webhooks/generic", post(generic::receive))
        .route("/webhooks/hubspot", post(hubspot::receive))
        .route("/webhooks/salesforce", post(salesforce::receive))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(ingress)
}

/// The largest request body taken (413 above it): a Salesforce message of
/// 100 notifications, or a HubSpot batch of 100 events, is far smaller.
const MAX_BODY_BYTES: usize = 1024 * 1024;

async fn readyz(State(ingress): State<Arc<Ingress>>) -> Response {
    match ingress.courier().await {
        Ok(courier) if temporal::reachable(&courier.client).await => "ready".into_response(),
        Ok(_) => {
            // Connected once, gone now: connect anew on the next event.
            *ingress.client.lock().await = None;
            Refusal::Unavailable("Temporal does not answer".to_owned()).into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn metrics_page(State(ingress): State<Arc<Ingress>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ingress.metrics.render(),
    )
        .into_response()
}

/// The JSON answer of an accepted request.
pub(crate) fn accepted(outcomes: &[Outcome]) -> Response {
    let outcomes: Vec<&str> = outcomes.iter().map(|o| o.as_str()).collect();
    axum::Json(serde_json::json!({ "outcomes": outcomes })).into_response()
}

/// The body as UTF-8, or a 400.
pub(crate) fn body_text(body: &Bytes) -> Result<&str, Refusal> {
    std::str::from_utf8(body).map_err(|_| Refusal::Malformed("body: not UTF-8".to_owned()))
}

/// A header's value as text.
pub(crate) fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Serves until Ctrl-C or SIGTERM.
pub(crate) async fn run(config: IngressConfig, settings: Settings) -> anyhow::Result<()> {
    let listen = config.listen;
    if config.secret.is_none() {
        warn!(
            setting = "HANDOFF_INGRESS_SECRET",
            "ingress secret not set: /webhooks/generic refuses every call"
        );
    }
    if config.hubspot_client_secret.is_none() || config.public_url.is_none() {
        warn!(
            settings = "HANDOFF_HUBSPOT_CLIENT_SECRET, HANDOFF_INGRESS_PUBLIC_URL",
            "HubSpot not configured: /webhooks/hubspot refuses every call"
        );
    } else if config.hubspot_token.is_none() {
        warn!(
            setting = "HANDOFF_HUBSPOT_TOKEN",
            "HubSpot token not set: closed-won deals cannot be read and are answered 503"
        );
    }
    if config.secret.as_deref().is_some_and(|s| s.len() < 16) {
        warn!(
            setting = "HANDOFF_INGRESS_SECRET",
            "ingress secret shorter than 16 characters: anyone who guesses it can start and move handoffs (e.g. openssl rand -hex 32)"
        );
    }
    if config.salesforce_org_id.is_none() {
        warn!(
            setting = "HANDOFF_SALESFORCE_ORG_ID",
            "Salesforce not configured: /webhooks/salesforce refuses every call"
        );
    } else if config.salesforce_token.is_none() {
        warn!(
            setting = "HANDOFF_SALESFORCE_TOKEN",
            "Salesforce token not set: the organisation id, which is not a secret, is all that guards /webhooks/salesforce"
        );
    }
    if config.hubspot_client_secret.is_some() && config.hubspot_portal_id.is_none() {
        info!(
            setting = "HANDOFF_HUBSPOT_PORTAL_ID",
            "HubSpot events of any portal are taken; set the portal id when the app is installed in more than one"
        );
    }
    let ingress = Arc::new(Ingress::open(config, settings).await?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Exit::config(format!("cannot listen on {listen}: {e}")))?;
    info!(address = %listen, "ingress listening");
    axum::serve(listener, router(ingress))
        .with_graceful_shutdown(crate::worker::wait_for_shutdown(None))
        .await?;
    Ok(())
}
