//! SAP's attachment service `API_CV_ATTACHMENT_SRV` (OData V2), as far as the processor uses
//! it: the originals linked to a business object, and an upload (`docs/attachments.md` has
//! the sources and what is unverified).
//!
//! Rules:
//! - the service is a sibling of `API_MAINTNOTIFICATION` under the same host and path
//!   ([`service_beside`]), reached by a client of its own (its own session and CSRF token, the
//!   same logon, TLS and request rate), unless `S4_ATTACHMENT_URL` names it;
//! - `GetAllOriginals` is a `GET` function import whose parameters are quoted URI literals;
//!   its answer is a collection (`d.results`, or `d` itself as older Gateways answer);
//! - an upload is a `POST` to the media entity set `AttachmentContentSet`: the file is the raw
//!   body, with `Content-Type`, `Slug` (the file name), `BusinessObjectTypeName` and
//!   `LinkedSAPObjectKey` as headers; it is a write (CSRF token, never repeated when its
//!   outcome is unknown);
//! - a notification's key is its number as S/4 stores it (`QMNUM`, 12 characters): a number of
//!   digits is padded with zeros on the left, as SAP's ALPHA conversion does ([`linked_key`]).

use std::sync::Arc;
use std::time::Instant;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, Url};
use serde_json::Value;

use super::S4Client;
use super::error::S4Error;
use super::request::{Requests, S4Request, Upload, literal};

/// The attachment service's name, as its path ends.
pub const ATTACHMENT_SERVICE: &str = "API_CV_ATTACHMENT_SRV";

/// The attachment service beside the notification service `notifications` (its last path
/// segment replaced).
pub fn service_beside(notifications: &Url) -> Url {
    let mut url = notifications.clone();
    let path = url.path().trim_end_matches('/');
    let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
    url.set_path(&format!("{parent}/{ATTACHMENT_SERVICE}"));
    url
}

/// A notification number as the attachment service links it: digits padded to 12 with zeros.
pub fn linked_key(number: &str) -> String {
    if !number.is_empty() && number.len() < 12 && number.bytes().all(|b| b.is_ascii_digit()) {
        format!("{number:0>12}")
    } else {
        number.to_string()
    }
}

impl Requests {
    /// The originals linked to an object (`GetAllOriginals`).
    pub fn originals(&self, object_type: &str, key: &str) -> Result<S4Request, S4Error> {
        let quoted = |v: &str| utf8_percent_encode(&literal(v), NON_ALPHANUMERIC).to_string();
        self.get(&format!(
            "/GetAllOriginals?BusinessObjectTypeName={}&LinkedSAPObjectKey={}&$format=json",
            quoted(object_type),
            quoted(key)
        ))
    }

    /// Uploads a file linked to an object (`POST AttachmentContentSet`).
    pub fn attach(
        &self,
        object_type: &str,
        key: &str,
        file_name: &str,
        content_type: &str,
        bytes: Arc<Vec<u8>>,
    ) -> Result<S4Request, S4Error> {
        Ok(S4Request {
            method: Method::POST,
            url: self.url("/AttachmentContentSet")?,
            body: None,
            upload: Some(Upload {
                content_type: content_type.to_string(),
                headers: vec![
                    ("Slug".into(), file_name.into()),
                    ("BusinessObjectTypeName".into(), object_type.into()),
                    ("LinkedSAPObjectKey".into(), key.into()),
                ],
                bytes,
            }),
        })
    }
}

impl S4Client {
    /// The file names of the originals linked to an object.
    pub async fn originals(
        &self,
        object_type: &str,
        key: &str,
        deadline: Instant,
    ) -> Result<Vec<String>, S4Error> {
        let request = self.requests().originals(object_type, key)?;
        let body = self.transport.send(&request, deadline).await?;
        let results = body
            .pointer("/d/results")
            .or_else(|| body.get("d"))
            .and_then(Value::as_array)
            .ok_or_else(|| {
                S4Error::Transient("GetAllOriginals answered without a list of originals".into())
            })?;
        Ok(results
            .iter()
            .map(|r| {
                r.get("FileName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            })
            .collect())
    }

    /// Uploads a file linked to an object.
    #[allow(clippy::too_many_arguments)]
    pub async fn attach(
        &self,
        object_type: &str,
        key: &str,
        file_name: &str,
        content_type: &str,
        bytes: Arc<Vec<u8>>,
        deadline: Instant,
    ) -> Result<(), S4Error> {
        let request = self
            .requests()
            .attach(object_type, key, file_name, content_type, bytes)?;
        self.write(&request, deadline).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_is_a_sibling_of_the_notifications() {
        let url = Url::parse("https://s4.example.com/sap/opu/odata/sap/API_MAINTNOTIFICATION/")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            service_beside(&url).as_str(),
            "https://s4.example.com/sap/opu/odata/sap/API_CV_ATTACHMENT_SRV"
        );
    }

    #[test]
    fn numbers_are_padded_as_alpha_conversion_does() {
        assert_eq!(linked_key("10000001"), "000010000001");
        assert_eq!(linked_key("000010000001"), "000010000001");
        assert_eq!(linked_key("N-1"), "N-1");
    }

    #[test]
    fn an_upload_carries_its_headers_and_raw_body() {
        let url = Url::parse("https://s4.example.com/sap/opu/odata/sap/API_CV_ATTACHMENT_SRV")
            .unwrap_or_else(|e| panic!("{e}"));
        let requests = Requests::for_service(url, Some("100".into()));
        let request = requests
            .attach(
                "PMQMEL",
                "000010000001",
                "a.png",
                "image/png",
                Arc::new(vec![1, 2]),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(request.is_write() && !request.needs_if_match());
        let text = request.describe();
        for line in [
            "POST https://s4.example.com/sap/opu/odata/sap/API_CV_ATTACHMENT_SRV/AttachmentContentSet?sap-client=100",
            "Slug: a.png",
            "BusinessObjectTypeName: PMQMEL",
            "LinkedSAPObjectKey: 000010000001",
            "Content-Type: image/png",
            "(2 bytes)",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        let read = requests
            .originals("PMQMEL", "000010000001")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            read.url.as_str().contains(
                "GetAllOriginals?BusinessObjectTypeName=%27PMQMEL%27&LinkedSAPObjectKey=%27000010000001%27"
            ),
            "{}",
            read.url
        );
    }
}
