//! A webhook receiver on loopback for the end-to-end tests: plain HTTP/1.1
//! over `std::net`, one thread per connection. It keeps what a task system
//! would keep (one entry per `Idempotency-Key`, 409 for a repeat) and every
//! request in arrival order, and verifies `X-Handoff-Signature`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The secret the workers under test sign with.
pub(crate) const SECRET: &str = "e2e-secret";

/// One request as received.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) key: String,
    pub(crate) signature_valid: bool,
    pub(crate) body: Value,
}

#[derive(Debug, Default)]
struct State {
    requests: Vec<Request>,
    committed: BTreeMap<String, Value>,
    /// Commit the request with this 1-based number, then never answer it.
    stall_on: Option<usize>,
    /// Answer 503 to everything and commit nothing, as a sink in an outage.
    down: bool,
    /// How long each answer takes after the commit, as a slow sink.
    delay: Duration,
}

/// A running receiver.
#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    /// Listens on a free loopback port; `stall_on` makes that request hang
    /// after it is committed, as a receiver that dies mid-answer would.
    pub(crate) fn start(stall_on: Option<usize>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            stall_on,
            ..Default::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Self { url, state }
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub(crate) fn committed(&self) -> BTreeMap<String, Value> {
        self.state.lock().unwrap().committed.clone()
    }

    /// Starts or ends an outage.
    pub(crate) fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Makes every answer take `delay` after the commit.
    pub(crate) fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let (status, stall) = record(state, &headers, &body);
        let delay = state.lock().unwrap().delay;
        std::thread::sleep(delay);
        if stall {
            std::thread::sleep(Duration::from_secs(3600));
            return;
        }
        let reason = match status {
            401 => "Unauthorized",
            503 => "Service Unavailable",
            _ => "OK",
        };
        let answer = format!("HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\n\r\n");
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn record(state: &Mutex<State>, headers: &BTreeMap<String, String>, body: &[u8]) -> (u16, bool) {
    let key = headers.get("idempotency-key").cloned().unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let signature_valid = headers.get("x-handoff-signature") == Some(&expected);
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut state = state.lock().unwrap();
    state.requests.push(Request {
        key: key.clone(),
        signature_valid,
        body: body.clone(),
    });
    if !signature_valid {
        return (401, false);
    }
    if state.down {
        return (503, false);
    }
    let stall = state.stall_on == Some(state.requests.len());
    if state.committed.contains_key(&key) {
        return (409, stall);
    }
    state.committed.insert(key, body);
    (201, stall)
}
