//! RFC 9457 problem details, the one error body both the edge and the origin send.

use serde::{Deserialize, Serialize};

/// The media type of a problem details body.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem details object.
///
/// `kind` is a stable machine-readable slug; it becomes the `type` URI
/// (`https://breakwater.dev/problems/<kind>`), so clients can branch on it without parsing prose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The request id, so a user's bug report can be matched to logs on both sides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Base of every problem `type` URI.
pub const TYPE_BASE: &str = "https://breakwater.dev/problems/";

impl Problem {
    /// A problem of the given kind (`bad-request`, `origin-unreachable`, ...) and HTTP status.
    pub fn new(kind: &str, status: u16, title: impl Into<String>) -> Self {
        Self {
            type_uri: format!("{TYPE_BASE}{kind}"),
            title: title.into(),
            status,
            detail: None,
            instance: None,
            request_id: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// The `kind` slug this problem was built from.
    pub fn kind(&self) -> &str {
        self.type_uri
            .strip_prefix(TYPE_BASE)
            .unwrap_or(&self.type_uri)
    }

    /// The serialized body.
    pub fn to_json(&self) -> String {
        // A struct of strings and an integer cannot fail to serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_rfc9457_members_and_omits_absent_ones() {
        let p = Problem::new("bad-request", 400, "Bad request").with_detail("path contains '..'");
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(v["type"], "https://breakwater.dev/problems/bad-request");
        assert_eq!(v["status"], 400);
        assert_eq!(v["detail"], "path contains '..'");
        assert!(v.get("instance").is_none());
        assert_eq!(p.kind(), "bad-request");
    }

    #[test]
    fn round_trips() {
        let p = Problem::new("origin-timeout", 504, "Origin timed out")
            .with_instance("/api/products")
            .with_request_id("abc");
        let back: Problem = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(back, p);
    }
}
