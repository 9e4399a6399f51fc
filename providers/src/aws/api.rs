//! EC2's Query API: the form bodies floaty sends and the few elements of
//! the XML answers it reads, by local name (the namespace is fixed, the
//! prefix is not). An absent element and an empty one both mean "none":
//! AWS omits them, other implementations (moto) send `<instanceId/>`.

use roxmltree::{Document, Node};

pub(crate) const VERSION: &str = "2016-11-15";

/// The form body of one call: `Action`, `Version`, then the parameters.
pub(crate) fn form(action: &str, params: &[(String, String)]) -> String {
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("Action", action);
    for (k, v) in params {
        body.append_pair(k, v);
    }
    body.append_pair("Version", VERSION);
    body.finish()
}

/// `Name.1=a&Name.2=b…`: EC2's lists are indexed from 1.
pub(crate) fn list(name: &str, values: impl IntoIterator<Item = String>) -> Vec<(String, String)> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("{name}.{}", i + 1), v))
        .collect()
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The text of child `name`, None when absent or empty.
fn text(node: Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name)
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn items<'a, 'i>(node: Node<'a, 'i>, set: &str) -> Vec<Node<'a, 'i>> {
    child(node, set)
        .map(|s| {
            s.children()
                .filter(|c| c.is_element() && c.tag_name().name() == "item")
                .collect()
        })
        .unwrap_or_default()
}

/// Why an answer could not be read; the caller makes it a protocol error.
pub(crate) type ParseError = String;

fn parse(body: &str) -> Result<Document<'_>, ParseError> {
    Document::parse(body).map_err(|e| format!("not XML: {e}"))
}

/// `<Response><Errors><Error><Code>…</Code><Message>…</Message>`.
pub(crate) fn error(body: &str) -> Option<(String, String)> {
    let doc = Document::parse(body).ok()?;
    let error = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "Error")?;
    Some((
        text(error, "Code")?,
        text(error, "Message").unwrap_or_default(),
    ))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Address {
    pub public_ip: String,
    pub allocation_id: Option<String>,
    pub instance_id: Option<String>,
    pub network_interface_id: Option<String>,
}

pub(crate) fn addresses(body: &str) -> Result<Vec<Address>, ParseError> {
    let doc = parse(body)?;
    Ok(items(doc.root_element(), "addressesSet")
        .into_iter()
        .filter_map(|item| {
            Some(Address {
                public_ip: text(item, "publicIp")?,
                allocation_id: text(item, "allocationId"),
                instance_id: text(item, "instanceId"),
                network_interface_id: text(item, "networkInterfaceId"),
            })
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interface {
    pub id: String,
    pub instance_id: Option<String>,
    pub mac: Option<String>,
    pub private_ips: Vec<String>,
}

pub(crate) fn interfaces(body: &str) -> Result<Vec<Interface>, ParseError> {
    let doc = parse(body)?;
    Ok(items(doc.root_element(), "networkInterfaceSet")
        .into_iter()
        .filter_map(|item| {
            Some(Interface {
                id: text(item, "networkInterfaceId")?,
                instance_id: child(item, "attachment").and_then(|a| text(a, "instanceId")),
                mac: text(item, "macAddress"),
                private_ips: items(item, "privateIpAddressesSet")
                    .into_iter()
                    .filter_map(|p| text(p, "privateIpAddress"))
                    .collect(),
            })
        })
        .collect())
}

/// `<return>true</return>` of a write.
pub(crate) fn returned_true(body: &str) -> Result<bool, ParseError> {
    let doc = parse(body)?;
    Ok(text(doc.root_element(), "return").as_deref() == Some("true"))
}

/// The first instance's id and state of `DescribeInstances`, for `--test`.
pub(crate) fn instance_state(body: &str) -> Result<Option<(String, String)>, ParseError> {
    let doc = parse(body)?;
    let instance = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "instancesSet")
        .and_then(|set| set.children().find(|c| c.is_element()));
    Ok(instance.and_then(|i| {
        let id = text(i, "instanceId")?;
        let state = child(i, "instanceState")
            .and_then(|s| text(s, "name"))
            .unwrap_or_else(|| "unknown".into());
        Some((id, state))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API Reference's DescribeAddresses sample.
    const DESCRIBE: &str = r#"<DescribeAddressesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>f7de5e98-491a-4c19-a92d-908d6EXAMPLE</requestId>
    <addressesSet><item>
      <publicIp>203.0.113.41</publicIp><allocationId>eipalloc-08229861</allocationId><domain>vpc</domain>
      <instanceId>i-0598c7d356eba48d7</instanceId><associationId>eipassoc-f0229899</associationId>
      <networkInterfaceId>eni-ef229886</networkInterfaceId><networkInterfaceOwnerId>053230519467</networkInterfaceOwnerId>
      <privateIpAddress>10.0.0.228</privateIpAddress>
    </item><item><publicIp>203.0.113.42</publicIp><allocationId>eipalloc-1</allocationId><instanceId/><networkInterfaceId></networkInterfaceId></item>
    <item><publicIp>203.0.113.43</publicIp><allocationId>eipalloc-2</allocationId></item>
    </addressesSet></DescribeAddressesResponse>"#;

    #[test]
    fn addresses_absent_and_empty_mean_none() {
        let list = addresses(DESCRIBE).expect("parses");
        assert_eq!(
            list[0],
            Address {
                public_ip: "203.0.113.41".into(),
                allocation_id: Some("eipalloc-08229861".into()),
                instance_id: Some("i-0598c7d356eba48d7".into()),
                network_interface_id: Some("eni-ef229886".into()),
            }
        );
        for unassociated in &list[1..] {
            assert_eq!(unassociated.instance_id, None);
            assert_eq!(unassociated.network_interface_id, None);
        }
        assert!(addresses("<nope").is_err());
    }

    #[test]
    fn errors_and_returns() {
        let e = r#"<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-30a4c258' does not exist</Message></Error></Errors><RequestID>e53c7b2e</RequestID></Response>"#;
        assert_eq!(
            error(e),
            Some((
                "InvalidInstanceID.NotFound".into(),
                "The instance ID 'i-30a4c258' does not exist".into()
            ))
        );
        assert_eq!(error("<html>Bad gateway</html>"), None);
        let ok = r#"<AssociateAddressResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
     <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId><return>true</return>
     <associationId>eipassoc-fc5ca095</associationId></AssociateAddressResponse>"#;
        assert_eq!(returned_true(ok), Ok(true));
    }

    #[test]
    fn interfaces_with_nested_items() {
        let body = r#"<DescribeNetworkInterfacesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
<networkInterfaceSet><item><networkInterfaceId>eni-1</networkInterfaceId><attachment><instanceId>i-1</instanceId></attachment>
<macAddress>0a:00:00:00:00:01</macAddress><privateIpAddress>10.0.0.5</privateIpAddress>
<privateIpAddressesSet><item><privateIpAddress>10.0.0.5</privateIpAddress><primary>true</primary></item>
<item><privateIpAddress>10.0.0.100</privateIpAddress><primary>false</primary></item></privateIpAddressesSet></item></networkInterfaceSet>
</DescribeNetworkInterfacesResponse>"#;
        let list = interfaces(body).expect("parses");
        assert_eq!(
            list,
            [Interface {
                id: "eni-1".into(),
                instance_id: Some("i-1".into()),
                mac: Some("0a:00:00:00:00:01".into()),
                private_ips: vec!["10.0.0.5".into(), "10.0.0.100".into()],
            }]
        );
    }

    #[test]
    fn forms_are_encoded_and_indexed_from_one() {
        assert_eq!(
            form(
                "DescribeAddresses",
                &list("AllocationId", ["eipalloc-1".to_string(), "a b&c".to_string()])
            ),
            "Action=DescribeAddresses&AllocationId.1=eipalloc-1&AllocationId.2=a+b%26c&Version=2016-11-15"
        );
    }
}
