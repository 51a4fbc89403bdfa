//! XEP-0060 §8.2 node configuration forms (`pubsub#node_config`) and §7.1.5 publish-options preconditions: the
//! `pubsub#*` fields drupe supports, read from a submitted form and rendered into one.

use drupe_proto::dataform::{self, NS as XDATA};
use drupe_proto::error::Condition;
use drupe_proto::xml::Element;
use drupe_store::{AccessModel, NodeConfig, SendLast};

use super::Fail;

pub const NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// `pubsub#max_items`: a number, or "max"; more than `cap` means `cap` (clients that cannot say "max" ask for a
/// large number: Converse.js publishes bookmarks with 9999).
fn parse_max(v: &str, cap: u32) -> Option<u32> {
    if v == "max" {
        return Some(cap);
    }
    v.parse::<u32>().ok().filter(|n| *n >= 1).map(|n| n.min(cap))
}

/// One field's value applied to `config`: `Ok(false)` for a field drupe does not know (ignored), `Err` for a value
/// it cannot take.
fn apply_field(config: &mut NodeConfig, var: &str, value: &str, cap: u32) -> Result<bool, ()> {
    match var {
        "pubsub#access_model" => config.access_model = AccessModel::parse(value).ok_or(())?,
        "pubsub#persist_items" => config.persist_items = parse_bool(value).ok_or(())?,
        "pubsub#max_items" => config.max_items = parse_max(value, cap).ok_or(())?,
        "pubsub#send_last_published_item" => config.send_last = SendLast::parse(value).ok_or(())?,
        "pubsub#notify_retract" => config.notify_retract = parse_bool(value).ok_or(())?,
        "pubsub#notify_delete" => config.notify_delete = parse_bool(value).ok_or(())?,
        "pubsub#title" => config.title = Some(value.to_owned()).filter(|t| !t.is_empty()),
        _ => return Ok(false),
    }
    Ok(true)
}

fn fields_of(x: &Element) -> impl Iterator<Item = (String, String)> {
    dataform::fields(x)
        .into_iter()
        .filter(|(var, _)| var != "FORM_TYPE")
        .map(|(var, values)| (var, values.into_iter().next().unwrap_or_default()))
}

/// A submitted `pubsub#node_config` form applied to `base` (XEP-0060 §8.2.4). Unknown fields are ignored; a value
/// drupe cannot take is `not-acceptable`.
pub fn apply(base: &NodeConfig, x: &Element, cap: u32) -> Result<NodeConfig, Fail> {
    if x.attr("type") == Some("cancel") {
        return Ok(base.clone());
    }
    let mut config = base.clone();
    for (var, value) in fields_of(x) {
        apply_field(&mut config, &var, &value, cap).map_err(|()| Fail::Plain(Condition::NotAcceptable.into()))?;
    }
    Ok(config)
}

/// XEP-0060 §7.1.5: every option drupe knows must equal the node's configuration; otherwise the publish fails with
/// `precondition-not-met`.
pub fn preconditions_met(config: &NodeConfig, options: &Element, cap: u32) -> bool {
    fields_of(options).all(|(var, value)| {
        let mut wanted = config.clone();
        match apply_field(&mut wanted, &var, &value, cap) {
            Ok(true) => wanted == *config,
            Ok(false) => true,
            Err(()) => false,
        }
    })
}

fn value(v: impl Into<String>) -> Element {
    Element::new("value", XDATA).with_text(v)
}

fn list(var: &str, current: &str, options: &[&str]) -> Element {
    let mut field = dataform::field(var, "list-single").with_child(value(current));
    for o in options {
        field.push(Element::new("option", XDATA).with_child(value(*o)));
    }
    field
}

fn boolean(var: &str, v: bool) -> Element {
    dataform::field(var, "boolean").with_child(value(if v { "1" } else { "0" }))
}

/// The configuration as a form of `kind` ("form" for a configure request, "result" for metadata).
pub fn render(config: &NodeConfig, kind: &str, form_type: &str) -> Element {
    let models = [AccessModel::Open, AccessModel::Presence, AccessModel::Whitelist].map(AccessModel::as_str);
    let send_last = [SendLast::Never, SendLast::OnSub, SendLast::OnSubAndPresence].map(SendLast::as_str);
    dataform::form(kind, form_type)
        .with_child(
            dataform::field("pubsub#title", "text-single").with_child(value(config.title.clone().unwrap_or_default())),
        )
        .with_child(list("pubsub#access_model", config.access_model.as_str(), &models))
        .with_child(boolean("pubsub#persist_items", config.persist_items))
        .with_child(dataform::field("pubsub#max_items", "text-single").with_child(value(config.max_items.to_string())))
        .with_child(list("pubsub#send_last_published_item", config.send_last.as_str(), &send_last))
        .with_child(boolean("pubsub#notify_retract", config.notify_retract))
        .with_child(boolean("pubsub#notify_delete", config.notify_delete))
        .with_child(boolean("pubsub#deliver_notifications", true))
        .with_child(boolean("pubsub#deliver_payloads", true))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";

    fn options(pairs: &[(&str, &str)]) -> Element {
        let mut x = dataform::form("submit", PUBLISH_OPTIONS);
        for (var, v) in pairs {
            x.push(dataform::field(var, "text-single").with_child(value(*v)));
        }
        x
    }

    #[test]
    fn preconditions_compare_known_fields_only() {
        let config = NodeConfig { access_model: AccessModel::Open, max_items: 10, ..NodeConfig::default() };
        assert!(preconditions_met(&config, &options(&[("pubsub#access_model", "open")]), 10));
        assert!(preconditions_met(&config, &options(&[("pubsub#max_items", "max"), ("x#unknown", "1")]), 10));
        assert!(!preconditions_met(&config, &options(&[("pubsub#access_model", "presence")]), 10));
        assert!(!preconditions_met(&config, &options(&[("pubsub#persist_items", "0")]), 10));
        assert!(!preconditions_met(&config, &options(&[("pubsub#access_model", "roster")]), 10));
    }

    #[test]
    fn a_rendered_form_applies_back_to_the_same_config() {
        let config = NodeConfig {
            access_model: AccessModel::Whitelist,
            max_items: 7,
            persist_items: false,
            send_last: SendLast::Never,
            title: Some("t".into()),
            ..NodeConfig::default()
        };
        let form = render(&config, "submit", NODE_CONFIG);
        assert_eq!(apply(&NodeConfig::default(), &form, 10).unwrap(), config);
        let too_many = options(&[("pubsub#max_items", "9999")]);
        assert_eq!(apply(&config, &too_many, 10).unwrap().max_items, 10);
        assert!(preconditions_met(&NodeConfig { max_items: 10, ..config.clone() }, &too_many, 10));
        assert!(apply(&config, &options(&[("pubsub#max_items", "0")]), 10).is_err());
    }
}
