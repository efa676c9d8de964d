//! A session's key: the client limits that apply once it authenticated, the verifier's verdict
//! for a keys-file key, and revocation when the keys file drops it.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tickwire_engine::router::Control;

use super::{error, Session, Ws};
use crate::gateway::keys::Auth;
use crate::gateway::limits::{Limits, RateWindow, Violation};
use crate::gateway::{Shared, View};

impl Session {
    /// A client's change allowance: bursts of a minute's worth, or of its whole subscription
    /// limit when that is larger, so a client can subscribe all it may hold at once.
    pub(super) fn rate_window(l: &Limits, now: Instant) -> RateWindow {
        RateWindow::new(l.subscription_changes_per_minute, l.max_subscriptions, now)
    }

    /// The key named `name` checked out for this client: counts it against its key's and the
    /// gateway's client limits and applies the key's limits. Returns the reply to the
    /// authentication: success, or the refusal (the connection then closes after it).
    /// Answer with [`Session::answer`], which closes after a refusal.
    pub fn on_authed(&mut self, name: Arc<str>, shared: &Shared) -> Value {
        let success = || {
            json!({"type": "auth", "status": "success", "message": "Authentication successful",
                "broker": shared.cfg.broker, "user_id": shared.cfg.user_id,
                "supported_features": {"ltp": true, "quote": true, "depth": true}})
        };
        if self.authed {
            // Authenticating again changes nothing: the first key stays the one counted.
            return success();
        }
        let limits = shared.cfg.limits.for_key(&name);
        let joined = match shared.limit_state.clients.lock() {
            Ok(mut c) => c.join(
                &name,
                limits.max_clients_per_key,
                shared.cfg.limits.max_clients,
            ),
            Err(_) => Ok(()),
        };
        if let Err(full) = joined {
            let (kind, message) = match full {
                crate::gateway::limits::Full::Key(n) => (
                    Violation::KeyClientLimit,
                    format!("Too many clients for this API key ({name}): at most {n} at once"),
                ),
                crate::gateway::limits::Full::Gateway(n) => (
                    Violation::TooManyClients,
                    format!(
                        "Too many clients: the gateway serves at most {n} at once; retry later"
                    ),
                ),
            };
            shared
                .limit_state
                .violation(&shared.stats.limits, kind, 1, || message.clone());
            self.closing = Some((1013, message.clone()));
            return kind.error(&message);
        }
        self.authed = true;
        self.key_name = Some(name);
        self.limits = limits;
        self.rate = Self::rate_window(&limits, Instant::now());
        if let Ws::Open(ws) = &mut self.ws {
            let n = limits.max_message_bytes;
            ws.set_config(|c| {
                c.max_message_size = Some(n);
                c.max_frame_size = Some(n);
            });
        }
        success()
    }

    /// Counts and logs a violation of this client's limits.
    pub(super) fn violation(&self, shared: &Shared, kind: Violation, n: u64, what: &str) {
        let key = self.key_name().unwrap_or("(not authenticated)");
        shared
            .limit_state
            .violation(&shared.stats.limits, kind, n, || {
                format!("client {} (key {key}): {what}", self.consumer)
            });
    }

    /// Says why (the protocol's error message), then closes with `code` and `reason`.
    pub(super) fn refuse_and_close(
        &mut self,
        shared: &Shared,
        kind: Violation,
        code: u16,
        reason: &str,
    ) {
        self.violation(shared, kind, 1, reason);
        self.send(&kind.error(reason).to_string());
        self.close(code, reason);
    }

    /// A keys-file or plain key checked out (`from_file`: removing it from the file closes the
    /// session): the client limits apply ([`Session::on_authed`]), and the reply says so.
    pub(super) fn auth_ok(&mut self, name: Arc<str>, from_file: bool, shared: &Shared) -> Value {
        let was = self.authed;
        let reply = self.on_authed(name, shared);
        if !was && self.authed {
            self.key_from_file = from_file;
        }
        reply
    }

    /// The verifier's answer for the key this session presented (`name`: the key's name, or
    /// None: not a valid key): the auth reply, then the requests held back meanwhile.
    pub fn on_verdict(
        &mut self,
        name: Option<Arc<str>>,
        shared: &Shared,
        view: &View,
        outbox: &mut VecDeque<Control>,
        auth: &mut Auth,
    ) {
        if let Some(ep) = self.http_pending.take() {
            if name.is_none() {
                auth.failed(self.peer, Instant::now());
            }
            let reply = crate::gateway::endpoints::answer(&ep, name.is_some(), shared, view);
            self.respond(reply);
            self.write_response();
            return;
        }
        if !self.auth_pending {
            return;
        }
        self.auth_pending = false;
        let reply = match name {
            Some(n) => self.auth_ok(n, true, shared),
            None => self.auth_failed(auth, "Invalid API key"),
        };
        self.answer(&reply);
        if !self.is_open() {
            return;
        }
        self.read_requests(shared, view.last, outbox, auth);
        self.flush_socket();
    }

    /// After the keys file was reloaded: a session whose keys-file key is not in `names` any
    /// more is told so and closed (true).
    pub fn revoke_unless(&mut self, names: &HashSet<Arc<str>>) -> bool {
        if !self.authed || !self.key_from_file {
            return false;
        }
        let Some(name) = self.key_name.clone() else {
            return false;
        };
        if names.contains(&name) {
            return false;
        }
        let msg = format!("API key {name:?} was revoked; closing the connection");
        self.send(&error("API_KEY_REVOKED", &msg).to_string());
        self.close(4403, "API key revoked");
        true
    }
}
