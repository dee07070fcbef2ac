//! One activity attempt: a fresh instance of the activity component with
//! full (but sandboxed) WASI, invoked once.

use super::bindings::activity::weft::workflow::activity_context;
use super::bindings::{LogLevel, log_level};
use super::heartbeat::Heartbeats;
use super::limits::{Interrupt, MemoryLimit, captured_wasi};
use super::{Engine, Loaded, Prepared};
use crate::journal::{ErrorInfo, Failure, TimeoutKind, payload_value};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// Who is asking, for `activity-context.info`.
#[derive(Debug, Clone)]
pub struct AttemptInfo {
    pub run_id: String,
    /// The run's namespace: its turn for a core.
    pub namespace: String,
    pub workflow_id: String,
    pub activity: String,
    pub function: String,
    pub attempt: u32,
    pub idempotency_key: String,
    /// Hosts the deployment allows over HTTP.
    pub allow_http: Arc<Vec<String>>,
    /// Its namespace's memory limit, if lower than the server's.
    pub memory_limit: Option<usize>,
    /// The last heartbeat details of an earlier attempt.
    pub heartbeat_details: Option<String>,
    /// Where this attempt's heartbeats go.
    pub heartbeats: Arc<Heartbeats>,
    /// Whether the workflow cancelled the activity (and tells it).
    pub cancel: Arc<super::cancellation::Cancellation>,
}

pub struct ActivityState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryLimit,
    info: AttemptInfo,
    http: WasiHttpCtx,
    policy: HttpPolicy,
}

/// Outbound HTTP only to the hosts the activity's deployment allows, each
/// request carrying the attempt's trace context.
struct HttpPolicy {
    allow: Arc<Vec<String>>,
    activity: String,
    traceparent: Option<String>,
}

fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}

/// `entry` is `host`, `host:port` or `*.domain` (any port unless given).
fn allowed(allow: &[String], authority: &str) -> bool {
    let (host, port) = split_port(authority);
    allow.iter().any(|entry| {
        let (want_host, want_port) = split_port(entry);
        let host_ok = match want_host.strip_prefix("*.") {
            Some(domain) => host
                .to_ascii_lowercase()
                .ends_with(&format!(".{}", domain.to_ascii_lowercase())),
            None => want_host.eq_ignore_ascii_case(host),
        };
        host_ok && want_port.is_none_or(|p| Some(p) == port)
    })
}

type Sent = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        mut request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Sent {
        let authority = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        if !allowed(&self.allow, &authority) {
            tracing::warn!(
                activity = self.activity,
                "refused outbound HTTP to `{authority}`: not in the allow-list {:?}",
                self.allow
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        if let Some(parent) = &self.traceparent
            && let Ok(value) = http::HeaderValue::from_str(parent)
        {
            request
                .headers_mut()
                .entry(crate::telemetry::TRACEPARENT)
                .or_insert(value);
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

impl WasiHttpView for ActivityState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.policy,
        }
    }
}

impl WasiView for ActivityState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

pub fn linker(engine: &wasmtime::Engine) -> anyhow::Result<Linker<ActivityState>> {
    let mut l = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut l)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut l)?;
    super::bindings::activity::Activity::add_to_linker::<_, HasSelf<_>>(&mut l, |t| t)?;
    super::bindings::v0_1::activity::Activity::add_to_linker::<_, HasSelf<_>>(&mut l, |t| t)?;
    Ok(l)
}

impl super::bindings::workflow::weft::workflow::types::Host for ActivityState {}

impl activity_context::Host for ActivityState {
    fn info(&mut self) -> wasmtime::Result<activity_context::ActivityInfo> {
        Ok(activity_context::ActivityInfo {
            run_id: self.info.run_id.clone(),
            workflow_id: self.info.workflow_id.clone(),
            activity: self.info.activity.clone(),
            attempt: self.info.attempt,
            idempotency_key: self.info.idempotency_key.clone(),
            heartbeat_details: self.info.heartbeat_details.clone(),
        })
    }

    fn heartbeat(&mut self, details: String) -> wasmtime::Result<bool> {
        self.info.heartbeats.beat(details);
        Ok(!self.info.cancel.told())
    }

    fn is_cancelled(&mut self) -> wasmtime::Result<bool> {
        Ok(self.info.cancel.told())
    }

    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        let (run, activity) = (&self.info.run_id, &self.info.activity);
        match log_level(level) {
            tracing::Level::ERROR => tracing::error!(run, activity, "{message}"),
            tracing::Level::WARN => tracing::warn!(run, activity, "{message}"),
            tracing::Level::INFO => tracing::info!(run, activity, "{message}"),
            _ => tracing::debug!(run, activity, "{message}"),
        }
        Ok(())
    }
}

fn trap_failure(err: &wasmtime::Error, stderr: &MemoryOutputPipe) -> Failure {
    let (kind, message) = match Interrupt::of(err) {
        Some(i @ Interrupt::Memory { .. }) => ("memory-limit", i.to_string()),
        _ => ("trap", format!("the activity trapped: {err:#}")),
    };
    let stderr = String::from_utf8_lossy(&stderr.contents())
        .trim()
        .to_string();
    let mut info = ErrorInfo::new(kind, message);
    if !stderr.is_empty() {
        info.details = Some(Value::String(stderr));
    }
    Failure::Application(info)
}

impl Engine {
    /// Run one attempt of an activity, bounded by `timeout` (the limit of
    /// that kind).
    pub async fn invoke_activity(
        &self,
        loaded: &Loaded,
        info: AttemptInfo,
        input: &str,
        (timeout, kind): (Duration, TimeoutKind),
    ) -> Result<Value, Failure> {
        let Prepared::Activity(code) = &loaded.pre else {
            return Err(Failure::Application(ErrorInfo::new(
                "not-an-activity",
                format!("`{}` is a workflow, not an activity", info.activity),
            )));
        };
        let (wasi, stderr) = captured_wasi();
        let function = info.function.clone();
        let namespace = info.namespace.clone();
        let policy = HttpPolicy {
            allow: info.allow_http.clone(),
            activity: info.activity.clone(),
            traceparent: crate::telemetry::current_traceparent(),
        };
        let input = input.to_string();
        let key = info.idempotency_key.clone();
        let mut store = Store::new(
            self.wasm(),
            ActivityState {
                wasi,
                table: ResourceTable::new(),
                memory: MemoryLimit::within(self.config.memory_limit, info.memory_limit),
                info,
                http: WasiHttpCtx::new(),
                policy,
            },
        );
        store.limiter(|s| &mut s.memory);
        // Activities may compute; they yield every tick and the timeout bounds them.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));

        let code = code.clone();
        let attempt = async move { code.invoke(&mut store, function, input, key).await };
        match tokio::time::timeout(timeout, self.cpu.run(&namespace, attempt)).await {
            Err(_) => Err(Failure::timed_out(
                kind,
                match kind {
                    TimeoutKind::StartToClose => format!(
                        "the attempt did not finish within its start-to-close timeout of {timeout:?}"
                    ),
                    _ => format!(
                        "the schedule-to-close timeout passed during an attempt ({timeout:?})"
                    ),
                },
            )),
            Ok(Err(trap)) => Err(trap_failure(&trap, &stderr)),
            Ok(Ok(Err(error))) => Err(Failure::Application(error)),
            Ok(Ok(Ok(output))) => Ok(payload_value(&output)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn allow_list_matches_hosts_ports_and_wildcards() {
        let allow = vec![
            "127.0.0.1:8080".to_string(),
            "api.example.com".to_string(),
            "*.cloud.test".to_string(),
        ];
        assert!(allowed(&allow, "127.0.0.1:8080"));
        assert!(!allowed(&allow, "127.0.0.1:8081"));
        assert!(!allowed(&allow, "localhost:8080"));
        assert!(allowed(&allow, "api.example.com"));
        assert!(allowed(&allow, "API.example.com:443"));
        assert!(allowed(&allow, "cell-1.cloud.test:9000"));
        assert!(!allowed(&allow, "cloud.test"));
        assert!(!allowed(&allow, "evil.com"));
        assert!(!allowed(&[], "api.example.com"));
    }
}
