//! The Fyers access token, read before anything is sent with it.
//!
//! Fyers hands out `APPID-100:eyJ…` (app id, colon, JWT); a bare JWT is accepted too. The data
//! socket's auth packet carries not the token but the `hsm_key` inside the JWT's payload, and the
//! payload's `exp` (epoch seconds) says when the token dies. Both are read here, without checking
//! the signature (that is Fyers' business): an expired or unreadable token stops the feed with a
//! clear reason instead of being redialled (the server would only refuse it, every few seconds).
//!
//! The `symbol-token` HTTP call authenticates with the bare JWT ([`AccessToken::jwt`]), as the SDK
//! does.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::brokers::master;

/// base64url, with or without `=` padding (JWTs have none; the SDK pads and decodes leniently).
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a token cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT with a readable payload holding `hsm_key` and `exp`.
    #[error(
        "the Fyers access token is not usable ({0}); expected APPID-100:<JWT> or a bare JWT as \
         issued by Fyers' login flow"
    )]
    Malformed(&'static str),
    /// Past its `exp`.
    #[error(
        "the Fyers access token expired at {exp} (epoch seconds; IST date {date}); Fyers tokens \
         last a day: log in again and restart with the new token"
    )]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// `exp` as an Indian date, `YYYY-MM-DD`.
        date: String,
    },
}

/// What tickwire needs from an access token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    /// The JWT without any `appid:` prefix (the `Authorization` of the HTTP API).
    pub jwt: String,
    /// The payload's `hsm_key` (the data socket's credential).
    pub hsm_key: String,
    /// The payload's `exp`, epoch seconds.
    pub exp: i64,
}

/// The JWT of `token`: what follows an `appid:` prefix, if any.
pub fn bare_jwt(token: &str) -> &str {
    let t = token.trim();
    t.split_once(':').map_or(t, |(_, jwt)| jwt)
}

impl AccessToken {
    /// Reads `appid:jwt` or a bare JWT.
    pub fn parse(token: &str) -> Result<Self, TokenError> {
        let jwt = bare_jwt(token);
        let mut parts = jwt.split('.');
        let (Some(_header), Some(payload), Some(_sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("not three dot-separated parts"));
        };
        let payload = B64
            .decode(payload)
            .map_err(|_| TokenError::Malformed("payload is not base64url"))?;
        let v: serde_json::Value = serde_json::from_slice(&payload)
            .map_err(|_| TokenError::Malformed("payload is not JSON"))?;
        let hsm_key = v["hsm_key"]
            .as_str()
            .filter(|k| !k.is_empty())
            .ok_or(TokenError::Malformed("no hsm_key in the payload"))?;
        let exp = v["exp"]
            .as_i64()
            .or_else(|| {
                v["exp"]
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f as i64)
            })
            .ok_or(TokenError::Malformed("no exp in the payload"))?;
        Ok(Self {
            jwt: jwt.to_owned(),
            hsm_key: hsm_key.to_owned(),
            exp,
        })
    }

    /// `Err` when the token has expired at `now` (epoch seconds).
    pub fn check(&self, now: i64) -> Result<(), TokenError> {
        if self.exp <= now {
            let (y, m, d) = master::ist_date(self.exp.saturating_mul(1000));
            return Err(TokenError::Expired {
                exp: self.exp,
                date: format!("{y:04}-{m:02}-{d:02}"),
            });
        }
        Ok(())
    }

    /// [`parse`](Self::parse) and [`check`](Self::check) against the clock.
    pub fn usable(token: &str) -> Result<Self, TokenError> {
        let t = Self::parse(token)?;
        t.check(now_s())?;
        Ok(t)
    }
}

/// Now, epoch seconds.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// An unsigned JWT carrying `hsm_key` and `exp`, for the mock broker and tests (Fyers' own tokens
/// are signed; nothing here checks signatures).
pub fn mock_token(hsm_key: &str, exp: i64) -> String {
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = B64.encode(serde_json::json!({ "exp": exp, "hsm_key": hsm_key }).to_string());
    format!("{header}.{payload}.mock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_are_read_and_checked() {
        let tok = mock_token("HSMKEY123", 2_000_000_000);
        let t = AccessToken::parse(&tok).unwrap();
        assert_eq!(
            (t.hsm_key.as_str(), t.exp, t.jwt.as_str()),
            ("HSMKEY123", 2_000_000_000, tok.as_str())
        );
        assert!(t.check(1_999_999_999).is_ok());
        // the app id prefix is stripped (the HTTP API wants the bare JWT)
        let prefixed = format!("XB12345678-100:{tok}");
        let p = AccessToken::parse(&prefixed).unwrap();
        assert_eq!(
            (p.jwt.as_str(), p.hsm_key.as_str()),
            (tok.as_str(), "HSMKEY123")
        );
        assert_eq!(bare_jwt(&prefixed), tok);
        // padding is optional
        let (h, rest) = tok.split_once('.').unwrap();
        let (pl, sig) = rest.split_once('.').unwrap();
        let padded = format!("{h}.{pl}{}.{sig}", "=".repeat((4 - pl.len() % 4) % 4));
        assert_eq!(AccessToken::parse(&padded).unwrap().hsm_key, "HSMKEY123");
        // expired
        let e = AccessToken::parse(&mock_token("k", 1_700_000_000))
            .unwrap()
            .check(1_700_000_000);
        let Err(e @ TokenError::Expired { .. }) = e else {
            panic!("{e:?}")
        };
        assert!(
            e.to_string().contains("expired") && e.to_string().contains("2023-11-15"),
            "{e}"
        );
        assert!(AccessToken::usable(&mock_token("k", 1)).is_err());
        for exp in [i64::MIN, -1, 0] {
            let t = AccessToken::parse(&mock_token("k", exp)).unwrap();
            assert!(
                t.check(0).is_err(),
                "{exp}: expired, and no overflow in the date"
            );
        }
        let far = AccessToken::parse(&mock_token("k", i64::MAX)).unwrap();
        assert!(far.check(now_s()).is_ok());
        assert!(AccessToken::usable(&mock_token("k", now_s() + 60)).is_ok());
        // garbage
        for bad in ["", "abc", "a.b", "a.b.c.d", "x.!!!.y", "x.bm90IGpzb24.y"] {
            assert!(
                matches!(AccessToken::parse(bad), Err(TokenError::Malformed(_))),
                "{bad}"
            );
        }
        let no_key = format!("x.{}.y", "eyJleHAiOjF9"); // {"exp":1}
        assert_eq!(
            AccessToken::parse(&no_key),
            Err(TokenError::Malformed("no hsm_key in the payload"))
        );
        let no_exp = "x.eyJoc21fa2V5IjoiayJ9.y"; // {"hsm_key":"k"}
        assert_eq!(
            AccessToken::parse(no_exp),
            Err(TokenError::Malformed("no exp in the payload"))
        );
    }
}
