//! `GET /metrics` on the app's HTTP server (`http_listen`), in Prometheus' text format: the
//! exporter's recorder, installed once by `switchboard run` as the process's, records what the
//! core counts (`switchboard_core::metrics`, which lists and describes every metric), and the
//! route renders it. The exporter runs no listener of its own; its upkeep (draining histogram
//! samples) runs here every few seconds.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use switchboard_core::metrics::{ALL, Kind};

use crate::cmd::run::Shutdown;

/// Prometheus' text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often histogram samples are drained into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// A recorder like the one [`install`] installs, not installed (for tests).
#[cfg(test)]
fn recorder() -> anyhow::Result<metrics_exporter_prometheus::PrometheusRecorder> {
    Ok(builder()?.build_recorder())
}

/// The exporter's settings: histograms with their own buckets (rendered as Prometheus
/// histograms, so that quantiles can be taken over several instances).
fn builder() -> anyhow::Result<PrometheusBuilder> {
    let mut builder = PrometheusBuilder::new();
    for m in ALL.iter().filter(|m| m.kind == Kind::Histogram) {
        builder = builder.set_buckets_for_metric(Matcher::Full(m.name.to_string()), m.buckets)?;
    }
    Ok(builder)
}

/// Installs the recorder as this process's and describes every metric; once: later calls return
/// the same handle.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = builder()?.install_recorder()?;
    switchboard_core::metrics::describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// The `/metrics` route over `handle`.
pub fn routes(handle: PrometheusHandle) -> axum::Router {
    axum::Router::new().route("/metrics", axum::routing::get(render)).with_state(handle)
}

async fn render(State(handle): State<PrometheusHandle>) -> ([(header::HeaderName, &'static str); 1], String) {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render())
}

/// Drains histogram samples every few seconds until shutdown, whether or not anyone scrapes.
pub async fn upkeep(handle: PrometheusHandle, shutdown: Shutdown) {
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(UPKEEP_EVERY) => handle.run_upkeep(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn the_route_renders_described_counters_and_bucketed_histograms() {
        let recorder = recorder().unwrap();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            switchboard_core::metrics::describe();
            metrics::counter!(switchboard_core::metrics::MESSAGES_IN, "channel" => "telegram").increment(2);
            metrics::histogram!(switchboard_core::metrics::MATCHER).record(0.003);
        });
        let req = axum::http::Request::builder().uri("/metrics").body(axum::body::Body::empty()).unwrap();
        let res = routes(handle).oneshot(req).await.unwrap();
        assert_eq!(res.status(), axum::http::StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("# TYPE switchboard_messages_in_total counter"), "{body}");
        assert!(body.contains("# HELP switchboard_messages_in_total Customer messages handled"), "{body}");
        assert!(body.contains("switchboard_messages_in_total{channel=\"telegram\"} 2"), "{body}");
        assert!(body.contains("# TYPE switchboard_matcher_seconds histogram"), "{body}");
        assert!(body.contains("switchboard_matcher_seconds_bucket{le=\"0.005\"} 1"), "{body}");
        assert!(body.contains("switchboard_matcher_seconds_bucket{le=\"0.0025\"} 0"), "{body}");
    }
}
