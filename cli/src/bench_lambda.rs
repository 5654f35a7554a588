//! One invocation of a function's own Lambda binary, through a local Lambda Runtime API, so its
//! time and memory are measured in a process that holds nothing else: the figure Lambda reports
//! as "Max Memory Used" is the peak resident set of exactly such a process.

use crate::CliError;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long the binary may take to start and answer before the benchmark gives up on it.
const INVOCATION_LIMIT: Duration = Duration::from_secs(300);

/// What one invocation of a Lambda binary measured.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaFigures {
    /// From handing the event over to receiving the response, in seconds.
    pub seconds: f64,
    /// Resident set when the binary first asked for an event (after its start-up), in MiB.
    pub started_mib: f64,
    /// Peak resident set once it answered, in MiB.
    pub peak_mib: f64,
    /// The response's JSON text.
    pub response: String,
}

/// The function's binary, when it was built next to this `pinpipe` (same profile).
pub fn binary_beside_pinpipe(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.join(name);
    path.is_file().then_some(path)
}

/// The Runtime API's side of the one invocation.
struct Invocation {
    event: bytes::Bytes,
    handed_over: Mutex<Option<(Instant, f64)>>,
    pid: u32,
    answered: Mutex<Option<oneshot::Sender<(Instant, String)>>>,
}

/// Runs `binary` with `env`, hands it `event` as its one invocation and measures it. The binary
/// is stopped once it has answered.
pub async fn invoke_once(
    binary: &Path,
    env: &[(&str, &str)],
    event: Vec<u8>,
) -> Result<LambdaFigures, CliError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| CliError::Bind {
            addr: "127.0.0.1:0".into(),
            source,
        })?;
    let addr = listener.local_addr().map_err(CliError::Server)?;
    let mut child = std::process::Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CliError::Bench(format!("starting {}: {e}", binary.display())))?;
    // Drained on its own thread so a chatty binary never blocks on a full pipe.
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            text
        })
    });
    let (answer, answered) = oneshot::channel();
    let state = Arc::new(Invocation {
        event: event.into(),
        handed_over: Mutex::new(None),
        pid: child.id(),
        answered: Mutex::new(Some(answer)),
    });
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(failed))
        .route("/2018-06-01/runtime/init/error", post(failed))
        .with_state(state.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut answered = answered;
    let waiting = Instant::now();
    let outcome = loop {
        tokio::select! {
            answer = &mut answered => break answer.ok(),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                let exited = matches!(child.try_wait(), Ok(Some(_)));
                if exited || waiting.elapsed() > INVOCATION_LIMIT {
                    break None;
                }
            }
        }
    };
    let peak_mib = memory_mib(state.pid, "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    let stderr = stderr
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    let handed_over = state.handed_over.lock().ok().and_then(|h| *h);
    match (outcome, handed_over) {
        (Some((done, response)), Some((start, started_mib))) => Ok(LambdaFigures {
            seconds: done.duration_since(start).as_secs_f64(),
            started_mib,
            peak_mib,
            response,
        }),
        _ => Err(CliError::Bench(format!(
            "{} did not answer its invocation: {}",
            binary.display(),
            stderr.trim()
        ))),
    }
}

/// `GET …/invocation/next`: the event the first time; later calls wait until the binary is
/// stopped, as they would between invocations.
async fn next(State(state): State<Arc<Invocation>>) -> (StatusCode, HeaderMap, bytes::Bytes) {
    let first = match state.handed_over.lock() {
        Ok(mut handed_over) if handed_over.is_none() => {
            *handed_over = Some((Instant::now(), memory_mib(state.pid, "VmRSS:")));
            true
        }
        _ => false,
    };
    if !first {
        std::future::pending::<()>().await;
    }
    let mut headers = HeaderMap::new();
    let deadline = chrono::Utc::now().timestamp_millis() + INVOCATION_LIMIT.as_millis() as i64;
    for (name, value) in [
        ("lambda-runtime-aws-request-id", "bench-1".to_string()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:000000000000:function:bench".to_string(),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (StatusCode::OK, headers, state.event.clone())
}

/// `POST …/invocation/{id}/response`: the answer.
async fn response(
    State(state): State<Arc<Invocation>>,
    UrlPath(_id): UrlPath<String>,
    body: String,
) -> StatusCode {
    let done = Instant::now();
    if let Some(answer) = state.answered.lock().ok().and_then(|mut a| a.take()) {
        let _ = answer.send((done, body));
    }
    StatusCode::ACCEPTED
}

/// `POST …/error`: the binary failed; it is stopped and its stderr shown.
async fn failed(State(state): State<Arc<Invocation>>, body: String) -> StatusCode {
    // Dropping the sender ends the wait with no answer.
    if let Ok(mut answer) = state.answered.lock() {
        answer.take();
    }
    tracing::warn!(error = %body, "the Lambda binary reported an error");
    StatusCode::ACCEPTED
}

/// A `/proc/<pid>/status` memory figure (`VmRSS:`, `VmHWM:`), in MiB; 0 where unknown.
fn memory_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
