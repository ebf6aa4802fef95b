//! The web console in tests: accounts (an argon2id hash of a password, in the PHC form
//! `[[web.accounts]] password_hash` takes, made with the smallest costs so tests stay fast; the
//! console verifies whatever costs the hash names), and [`Browser`], a client of the console's API
//! that drives its router in process, as a browser on the console's own site would.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The `Host` every [`Browser`] request names.
pub const HOST: &str = "127.0.0.1:8080";
/// The console's own site, the `Origin` of every [`Browser`] POST.
pub const ORIGIN: &str = "http://127.0.0.1:8080";

/// The argon2id hash of `password` (1 MiB, one pass), as `switchboard console-password` prints
/// one but cheaper to make and to check.
pub fn password_hash(password: &str) -> String {
    let params = Params::new(1024, 1, 1, None).expect("valid argon2 costs");
    // A fixed salt: these hashes are test fixtures, never stored for a real account.
    let salt = SaltString::from_b64("c3dpdGNoYm9hcmQtdGVzdA").expect("a valid salt");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password(password.as_bytes(), &salt).expect("argon2 hashes").to_string()
}

/// What the router answered: status, headers, body as text and as JSON (`null` if it is not).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

/// Sends `req` to `app` and reads the whole answer.
pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.unwrap_or_else(|never| match never {});
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.expect("the body is read");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, headers, text, json }
}

/// A browser on the console's own site, with its session (if signed in): the `sb_console`
/// cookie's value and the CSRF token sign-in gave.
#[derive(Clone, Debug, Default)]
pub struct Browser {
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

impl Browser {
    /// A request as this browser sends it: the host, its cookie, and on POST its `Origin`.
    pub fn request(&self, method: &str, path: &str) -> axum::http::request::Builder {
        let mut b = Request::builder().method(method).uri(path).header(header::HOST, HOST);
        if let Some(c) = &self.cookie {
            b = b.header(header::COOKIE, format!("theme=dark; sb_console={c}"));
        }
        if method == "POST" {
            b = b.header(header::ORIGIN, ORIGIN);
        }
        b
    }

    pub async fn get(&self, app: &Router, path: &str) -> Reply {
        send(app, self.request("GET", path).body(Body::empty()).expect("a valid request")).await
    }

    /// A JSON POST, with the CSRF token if the browser has one.
    pub async fn post(&self, app: &Router, path: &str, body: Value) -> Reply {
        let mut b = self.request("POST", path).header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = &self.csrf {
            b = b.header("x-csrf-token", t);
        }
        send(app, b.body(Body::from(body.to_string())).expect("a valid request")).await
    }

    /// Signs in; on success keeps the cookie and the CSRF token.
    pub async fn sign_in(&mut self, app: &Router, name: &str, password: &str) -> Reply {
        let r = self.post(app, "/console/api/sign-in", json!({ "name": name, "password": password })).await;
        if r.status == StatusCode::OK {
            let cookie = r.headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).expect("sign-in sets a cookie");
            let value = cookie.split(';').next().and_then(|c| c.strip_prefix("sb_console=")).expect("the sb_console cookie");
            self.cookie = Some(value.to_string());
            self.csrf = Some(r.json["csrf"].as_str().expect("sign-in gives a CSRF token").to_string());
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    #[test]
    fn the_hash_verifies_its_password_and_no_other() {
        let hash = super::password_hash("secret words");
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(argon2::Argon2::default().verify_password(b"secret words", &parsed).is_ok());
        assert!(argon2::Argon2::default().verify_password(b"other words", &parsed).is_err());
    }
}
