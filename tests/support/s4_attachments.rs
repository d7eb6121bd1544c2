//! SAP's attachment service `API_CV_ATTACHMENT_SRV` (OData V2) in the S/4 test server
//! (`s4.rs`), enforcing what its metadata and SAP's description of the upload say
//! (`docs/attachments.md`):
//! - `AttachmentContentSet` is a media entity set: `POST` with the file as the raw body and
//!   the headers `Slug` (the file name, `FileName` 255), `Content-Type` (`MimeType` 128),
//!   `BusinessObjectTypeName` (40) and `LinkedSAPObjectKey` (90), each required (400 with a
//!   SAP-shaped error); a write, so the session's CSRF token fetched on this service (403
//!   `x-csrf-token: Required` otherwise); answered 201 with the entity, its eight key
//!   properties and `FileSize` as a string, as the EDMX types them;
//! - the linked object must exist: for `PMQMEL` and `BUS2038` a notification whose number,
//!   padded to 12 digits, is the key (400 otherwise); other object types are refused;
//! - a file larger than the limit (default 10 MB; unverified on a real system) is refused
//!   with 413, an empty one with 400;
//! - `GetAllOriginals` (`GET`, parameters as quoted URI literals, `LinkedSAPObjectKey`
//!   required) lists the originals linked to the object, `d.results`;
//! - nothing is idempotent: the same upload twice is two originals, as in S/4.
//!
//! Faults on demand come from the server's (503s, delays, capacity) and from here: every
//! upload refused (`refuse_uploads`), as an S/4 without the authorisation would.

use serde_json::{Value, json};

use super::http::{Answer, Request};

/// The service's path.
pub const SERVICE: &str = "/sap/opu/odata/sap/API_CV_ATTACHMENT_SRV";

/// The object types whose keys are notifications.
const NOTIFICATION_TYPES: [&str; 2] = ["PMQMEL", "BUS2038"];

/// One original S/4 holds.
#[derive(Debug, Clone)]
pub struct Original {
    pub object_type: String,
    pub key: String,
    pub file_name: String,
    pub mime_type: String,
    pub bytes: Vec<u8>,
    pub document_id: String,
}

/// The attachment service's state.
pub struct Attachments {
    pub originals: Vec<Original>,
    pub uploads: u64,
    pub limit: usize,
    pub refuse: bool,
}

impl Default for Attachments {
    fn default() -> Self {
        Attachments {
            originals: Vec::new(),
            uploads: 0,
            limit: 10 * 1024 * 1024,
            refuse: false,
        }
    }
}

fn sap_error(status: &'static str, code: &str, message: &str) -> Answer {
    (
        status,
        vec![],
        json!({"error": {"code": code, "message": {"lang": "en", "value": message}}}).to_string(),
    )
}

fn entity(o: &Original) -> Value {
    json!({
        "__metadata": {
            "type": "API_CV_ATTACHMENT_SRV.AttachmentContent",
            "media_src": format!("{SERVICE}/AttachmentContentSet(DocumentInfoRecordDocType='',DocumentInfoRecordDocNumber='',DocumentInfoRecordDocVersion='',DocumentInfoRecordDocPart='',LogicalDocument='{0}',ArchiveDocumentID='{0}',LinkedSAPObjectKey='{1}',BusinessObjectTypeName='{2}')/$value", o.document_id, o.key, o.object_type),
        },
        "DocumentInfoRecordDocType": "",
        "DocumentInfoRecordDocNumber": "",
        "DocumentInfoRecordDocVersion": "",
        "DocumentInfoRecordDocPart": "",
        "LogicalDocument": o.document_id,
        "ArchiveDocumentID": o.document_id,
        "LinkedSAPObjectKey": o.key,
        "BusinessObjectTypeName": o.object_type,
        "FileName": o.file_name,
        "MimeType": o.mime_type,
        "FileSize": o.bytes.len().to_string(),
        "CreatedByUser": "E2B_TECH_USER",
    })
}

/// A parameter of a function import: a quoted, percent-encoded URI literal.
fn parameter(query: &str, name: &str) -> Option<String> {
    let raw = query
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))?;
    let text = percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned();
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

/// Answers a request to the service: `resource` is the path after [`SERVICE`], `token_ok`
/// whether the request carries the CSRF token of its session on this service, `exists`
/// whether a notification number exists.
pub fn answer(
    a: &mut Attachments,
    request: &Request,
    resource: &str,
    query: &str,
    token_ok: bool,
    exists: impl Fn(&str) -> bool,
) -> Answer {
    match (request.method.as_str(), resource) {
        ("GET", "/GetAllOriginals") => {
            let Some(key) = parameter(query, "LinkedSAPObjectKey") else {
                return sap_error(
                    "400 Bad Request",
                    "/IWBEP/CM_MGW_RT/020",
                    "Function import parameter 'LinkedSAPObjectKey' is missing or not a quoted literal",
                );
            };
            let object_type = parameter(query, "BusinessObjectTypeName");
            let results: Vec<Value> = a
                .originals
                .iter()
                .filter(|o| o.key == key)
                .filter(|o| object_type.as_ref().is_none_or(|t| *t == o.object_type))
                .map(entity)
                .collect();
            (
                "200 OK",
                vec![],
                json!({"d": {"results": results}}).to_string(),
            )
        }
        ("POST", "/AttachmentContentSet") => {
            if !token_ok {
                return (
                    "403 Forbidden",
                    vec![("x-csrf-token".into(), "Required".into())],
                    "CSRF token validation failed".into(),
                );
            }
            upload(a, request, exists)
        }
        ("GET", _) if resource.starts_with("/AttachmentContentSet") => sap_error(
            "405 Method Not Allowed",
            "/IWBEP/CM_MGW_RT/021",
            "The entity set is not addressable this way in the test server",
        ),
        _ => sap_error(
            "404 Not Found",
            "/IWBEP/CM_MGW_RT/022",
            &format!("Resource not found for segment '{resource}'"),
        ),
    }
}

fn upload(a: &mut Attachments, request: &Request, exists: impl Fn(&str) -> bool) -> Answer {
    let header = |name: &str| request.headers.get(name).cloned().unwrap_or_default();
    for (name, max) in [
        ("slug", 255),
        ("content-type", 128),
        ("businessobjecttypename", 40),
        ("linkedsapobjectkey", 90),
    ] {
        let value = header(name);
        if value.is_empty() {
            return sap_error(
                "400 Bad Request",
                "CV_ATTACHMENT_SRV/001",
                &format!("Header '{name}' is missing"),
            );
        }
        if value.chars().count() > max {
            return sap_error(
                "400 Bad Request",
                "CV_ATTACHMENT_SRV/002",
                &format!("Header '{name}' is longer than {max} characters"),
            );
        }
    }
    if a.refuse {
        return sap_error(
            "403 Forbidden",
            "CV_ATTACHMENT_SRV/010",
            "No authorization to create attachments for this object",
        );
    }
    let object_type = header("businessobjecttypename");
    let key = header("linkedsapobjectkey");
    if !NOTIFICATION_TYPES.contains(&object_type.as_str()) {
        return sap_error(
            "400 Bad Request",
            "CV_ATTACHMENT_SRV/003",
            &format!("Business object type {object_type} is not supported in the test server"),
        );
    }
    if key.len() != 12 || !exists(key.trim_start_matches('0')) {
        return sap_error(
            "400 Bad Request",
            "CV_ATTACHMENT_SRV/004",
            &format!("Object {object_type} {key} does not exist"),
        );
    }
    if request.raw.is_empty() {
        return sap_error(
            "400 Bad Request",
            "CV_ATTACHMENT_SRV/005",
            "The file is empty",
        );
    }
    if request.raw.len() > a.limit {
        return sap_error(
            "413 Payload Too Large",
            "CV_ATTACHMENT_SRV/006",
            &format!("The file exceeds the maximum size of {} bytes", a.limit),
        );
    }
    a.uploads += 1;
    let original = Original {
        object_type,
        key,
        file_name: header("slug"),
        mime_type: header("content-type"),
        bytes: request.raw.clone(),
        document_id: format!("{:032X}", a.uploads),
    };
    let body = json!({"d": entity(&original)}).to_string();
    a.originals.push(original);
    ("201 Created", vec![], body)
}
