//! EC2's XML out, written by hand: a few element kinds and an indenting
//! renderer are all the answers need, and a library would add nothing a
//! test could see.
//!
//! Answers are indented as EC2's are, with whitespace between elements, so
//! a client parser that trips over text nodes is caught here rather than
//! in production; empty sets are written `<addressesSet/>`, as EC2 does.
//! Error bodies are one line, as EC2's are (§3.6).

use crate::http::Response;

/// The 2016-11-15 API's namespace, on every answer's root element.
pub(crate) const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
/// Exactly what EC2 sends, without a space after the `;`.
pub(crate) const CONTENT_TYPE: &str = "text/xml;charset=UTF-8";
const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

/// One element of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum El {
    /// `<name>text</name>`, the text escaped when written.
    Text(&'static str, String),
    /// `<name/>`.
    Empty(&'static str),
    /// `<name>children</name>`, or `<name/>` without children.
    Parent(&'static str, Vec<El>),
}

impl El {
    pub fn text(name: &'static str, value: impl Into<String>) -> El {
        El::Text(name, value.into())
    }

    pub fn parent(name: &'static str, children: Vec<El>) -> El {
        El::Parent(name, children)
    }

    /// A set of `<item>`s, one per entry.
    pub fn set(name: &'static str, items: Vec<Vec<El>>) -> El {
        El::Parent(
            name,
            items
                .into_iter()
                .map(|item| El::Parent("item", item))
                .collect(),
        )
    }

    fn render(&self, depth: usize, out: &mut String) {
        let indent = "    ".repeat(depth);
        match self {
            El::Text(name, text) => {
                out.push_str(&format!("{indent}<{name}>{}</{name}>\n", escape(text)));
            }
            El::Empty(name) => out.push_str(&format!("{indent}<{name}/>\n")),
            El::Parent(name, children) if children.is_empty() => {
                out.push_str(&format!("{indent}<{name}/>\n"));
            }
            El::Parent(name, children) => {
                out.push_str(&format!("{indent}<{name}>\n"));
                for child in children {
                    child.render(depth + 1, out);
                }
                out.push_str(&format!("{indent}</{name}>\n"));
            }
        }
    }
}

/// Text content escaped: `&`, `<` and `>` (for `]]>`). Quotes stay as
/// they are, as in EC2's own messages (`The instance ID 'i-x' does not
/// exist`): only attribute values would need them escaped, and the only
/// attribute written is the namespace.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `<{Action}Response xmlns=...>` with the request id first, then `body`.
pub(crate) fn document(action: &str, request_id: &str, body: &[El]) -> String {
    let mut out = format!("{DECLARATION}\n<{action}Response xmlns=\"{NAMESPACE}\">\n");
    El::text("requestId", request_id).render(1, &mut out);
    for el in body {
        el.render(1, &mut out);
    }
    out.push_str(&format!("</{action}Response>"));
    out
}

/// EC2's error body, exactly as §3.6 prints it (on one line after the
/// declaration; `RequestID` in capitals there, unlike `requestId`).
pub(crate) fn error_body(code: &str, message: &str, request_id: &str) -> String {
    format!(
        "{DECLARATION}\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        escape(code),
        escape(message),
        escape(request_id)
    )
}

pub(crate) fn response(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![("Content-Type".into(), CONTENT_TYPE.into())],
        body: body.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_indented_with_empty_sets_and_escapes() {
        let doc = document(
            "AssociateAddress",
            "r-1",
            &[
                El::text("return", "true"),
                El::set("itemSet", vec![vec![El::text("a", "<&'\">")]]),
                El::set("emptySet", Vec::new()),
                El::Empty("instanceId"),
            ],
        );
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <AssociateAddressResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n\
             \x20   <requestId>r-1</requestId>\n\
             \x20   <return>true</return>\n\
             \x20   <itemSet>\n\
             \x20       <item>\n\
             \x20           <a>&lt;&amp;'\"&gt;</a>\n\
             \x20       </item>\n\
             \x20   </itemSet>\n\
             \x20   <emptySet/>\n\
             \x20   <instanceId/>\n\
             </AssociateAddressResponse>"
        );
    }

    #[test]
    fn error_body_is_the_published_one() {
        assert_eq!(
            error_body("InvalidInstanceID.NotFound", "The instance ID 'i-30a4c258' does not exist", "e53c7b2e"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>\
             <Message>The instance ID 'i-30a4c258' does not exist</Message></Error></Errors>\
             <RequestID>e53c7b2e</RequestID></Response>"
        );
    }
}
