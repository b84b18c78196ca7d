//! A stand-in for the HubSpot CRM API v3 on loopback, speaking its wire
//! format for the reads `handoff ingress` makes: a deal with its
//! associations, companies, contacts and the deal pipelines. It wants the
//! bearer token, answers 404 with HubSpot's error body for what it does not
//! hold, and counts the reads of each path.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// The token the receiver under test is given.
pub(crate) const TOKEN: &str = "pat-na1-test-token";

#[derive(Debug, Default)]
struct Portal {
    /// Object path (e.g. `deals/880001`) → the object's JSON.
    objects: BTreeMap<String, Value>,
    pipelines: Vec<Value>,
    /// Paths read, without the query.
    reads: Vec<String>,
}

/// A running fake.
#[derive(Clone)]
pub(crate) struct HubSpotFake {
    pub(crate) url: String,
    portal: Arc<Mutex<Portal>>,
}

impl HubSpotFake {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let portal = Arc::new(Mutex::new(Portal::default()));
        let shared = portal.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let portal = shared.clone();
                std::thread::spawn(move || serve(stream, &portal));
            }
        });
        Self { url, portal }
    }

    /// A deal in `stage` with one company and one contact.
    pub(crate) fn put_deal(&self, object_id: &str, stage: &str, amount: f64) {
        let company = format!("c{object_id}");
        let contact = format!("p{object_id}");
        let mut portal = self.portal.lock().unwrap();
        portal.objects.insert(
            format!("deals/{object_id}"),
            json!({
                "id": object_id,
                "properties": {
                    "dealname": format!("Rollout {object_id}"),
                    "amount": amount.to_string(),
                    "deal_currency_code": "USD",
                    "dealstage": stage,
                    "pipeline": "default",
                    "closedate": "2026-03-06T21:00:00Z",
                    "hs_object_id": object_id,
                },
                "createdAt": "2026-02-01T10:00:00Z",
                "updatedAt": "2026-03-06T21:00:00Z",
                "archived": false,
                "associations": {
                    "companies": { "results": [ { "id": company, "type": "deal_to_company" } ] },
                    "contacts": { "results": [ { "id": contact, "type": "deal_to_contact" } ] },
                },
            }),
        );
        portal.objects.insert(
            format!("companies/{company}"),
            json!({ "id": company, "properties": {
                "name": format!("Account {object_id}"), "domain": "example.com",
                "industry": "LOGISTICS_AND_SUPPLY_CHAIN" }, "archived": false }),
        );
        portal.objects.insert(
            format!("contacts/{contact}"),
            json!({ "id": contact, "properties": {
                "firstname": "A.", "lastname": "Person", "email": "a.person@example.com" },
                "archived": false }),
        );
    }

    /// Changes one property of a deal.
    pub(crate) fn set_property(&self, object_id: &str, name: &str, value: &str) {
        let mut portal = self.portal.lock().unwrap();
        let deal = portal
            .objects
            .get_mut(&format!("deals/{object_id}"))
            .expect("the deal was put");
        deal["properties"][name] = json!(value);
    }

    /// Adds a deal pipeline: `stages` are (id, label, isClosed, probability).
    pub(crate) fn add_pipeline(&self, id: &str, stages: &[(&str, &str, bool, &str)]) {
        let stages: Vec<Value> = stages
            .iter()
            .enumerate()
            .map(|(order, (id, label, closed, probability))| {
                json!({ "id": id, "label": label, "displayOrder": order, "archived": false,
                        "metadata": { "isClosed": closed.to_string(), "probability": probability } })
            })
            .collect();
        self.portal
            .lock()
            .unwrap()
            .pipelines
            .push(json!({ "id": id, "label": id, "displayOrder": 1, "archived": false, "stages": stages }));
    }

    /// How many times a path (e.g. `/crm/v3/objects/deals/880001`) was read.
    pub(crate) fn reads(&self, path: &str) -> usize {
        let portal = self.portal.lock().unwrap();
        portal.reads.iter().filter(|p| *p == path).count()
    }
}

fn serve(stream: TcpStream, portal: &Mutex<Portal>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split(' ').nth(1).unwrap_or("/").to_owned();
    let mut authorized = false;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
            && value.trim() == format!("Bearer {TOKEN}")
        {
            authorized = true;
        }
    }
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let (status, body) = if !authorized {
        (
            401,
            json!({ "status": "error", "category": "INVALID_AUTHENTICATION",
                    "message": "Authentication credentials not found." }),
        )
    } else {
        let mut portal = portal.lock().unwrap();
        portal.reads.push(path.clone());
        let found = if path == "/crm/v3/pipelines/deals" {
            Some(json!({ "results": portal.pipelines }))
        } else {
            path.strip_prefix("/crm/v3/objects/")
                .and_then(|object| portal.objects.get(object).cloned())
        };
        match found {
            Some(body) => (200, body),
            None => (
                404,
                json!({ "status": "error", "category": "OBJECT_NOT_FOUND",
                        "message": "resource not found",
                        "correlationId": "00000000-0000-0000-0000-000000000000" }),
            ),
        }
    };
    let body = body.to_string();
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json;charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
