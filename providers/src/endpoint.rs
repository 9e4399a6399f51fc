//! The one check of an API base URL, for the config (at load, before any
//! side effect) and for a provider built from settings (at construction).
//!
//! `url::Url` alone is not enough: WHATWG parsing is forgiving where a
//! configured endpoint must not be (`http:///x` parses with host `x`,
//! `http://:80` is refused only for some schemes), so the authority is
//! looked at as written before the parser has its say.

/// Why a text cannot be an API base URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("empty")]
    Empty,
    #[error("not an http(s) URL")]
    NotHttp,
    /// url's own reason (`invalid port number`, ...).
    #[error("not a valid URL: {0}")]
    Invalid(String),
    /// `user:password@` before the host: reqwest would send Basic auth
    /// instead of the API's own credentials, and the password would end up
    /// wherever the URL is printed.
    #[error("holds credentials (`user:password@`)")]
    Credentials,
    #[error("has a query or fragment")]
    QueryOrFragment,
}

/// `s` as a base URL a request can go to, or why not.
pub fn check_endpoint(s: &str) -> Result<reqwest::Url, EndpointError> {
    if s.is_empty() {
        return Err(EndpointError::Empty);
    }
    let lower = s.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or(EndpointError::NotHttp)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty()
        || authority.starts_with(':')
        || s.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(EndpointError::NotHttp);
    }
    let url = reqwest::Url::parse(s).map_err(|e| EndpointError::Invalid(e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError::Credentials);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(EndpointError::NotHttp);
    }
    if s.contains(['?', '#']) {
        return Err(EndpointError::QueryOrFragment);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_passes_and_why_not() {
        for ok in [
            "https://api.cloudscale.ch/v1/",
            "http://127.0.0.1:8080",
            "HTTPS://[::1]:443/v2",
        ] {
            assert!(check_endpoint(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", EndpointError::Empty),
            ("ftp://x/", EndpointError::NotHttp),
            ("api.cloudscale.ch", EndpointError::NotHttp),
            ("http:///x", EndpointError::NotHttp),
            ("http://:80/", EndpointError::NotHttp),
            ("http://a b/", EndpointError::NotHttp),
            ("http://u:p@host/", EndpointError::Credentials),
            ("http://host/?a=1", EndpointError::QueryOrFragment),
            ("http://host/#x", EndpointError::QueryOrFragment),
        ] {
            assert_eq!(check_endpoint(bad).err(), Some(why), "{bad}");
        }
        assert!(matches!(
            check_endpoint("http://host:70000/"),
            Err(EndpointError::Invalid(m)) if m.contains("port")
        ));
    }
}
