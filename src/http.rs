//! The app's HTTP server routes that do not belong to an adapter: `GET /healthz`, which answers
//! `200 ok` when the store answers and `503` when it does not, so a load balancer or orchestrator
//! stops sending webhook traffic to an instance that cannot store messages. Adapters merge their
//! own routes (the Telegram webhook) into this router.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use switchboard_core::engine::Engine;

/// The health route, over `engine`'s store.
pub fn app(engine: Arc<Engine>) -> axum::Router {
    axum::Router::new().route("/healthz", axum::routing::get(healthz)).with_state(engine)
}

async fn healthz(State(engine): State<Arc<Engine>>) -> (StatusCode, &'static str) {
    match engine.store().get_value("switchboard", "health").await {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::store::MemoryStore;
    use switchboard_testkit::faulty::Faulty;
    use tower::ServiceExt;

    async fn get(app: &axum::Router) -> (StatusCode, String) {
        let req = axum::http::Request::builder().uri("/healthz").body(axum::body::Body::empty()).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn healthz_follows_the_store() {
        let store = Arc::new(Faulty::new(MemoryStore::new()));
        let pack = switchboard_core::pack::Pack::load(&std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents/okpay")).unwrap();
        let engine = Engine::new(store.clone(), pack, switchboard_core::engine::EngineConfig::default());
        let app = app(engine);
        assert_eq!(get(&app).await, (StatusCode::OK, "ok".to_string()));
        store.set_down(true);
        assert_eq!(get(&app).await, (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable".to_string()));
        store.set_down(false);
        assert_eq!(get(&app).await.0, StatusCode::OK);
    }
}
