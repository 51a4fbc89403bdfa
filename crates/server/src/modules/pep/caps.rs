//! XEP-0115 Entity Capabilities, as PEP uses them (XEP-0163 §4.4): which `node+notify` features each available
//! resource has. A `ver` is trusted only after the server asked the client for its disco#info and the §5 hash of
//! the answer equals it; only verified answers enter the (bounded) cache shared by every session. A client that
//! announces a `ver` it does not answer to cannot poison the cache for others (the ejabberd caps-poisoning bug).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use drupe_proto::ns;
use drupe_proto::xml::Element;

pub const NS: &str = "http://jabber.org/protocol/caps";

/// How long a disco#info query to a client waits for its answer before its slot is reused.
const PENDING_TIMEOUT: Duration = Duration::from_secs(60);

/// The features of one verified `ver`.
pub type Features = Arc<HashSet<String>>;

/// What one available resource announced.
struct SessionCaps {
    session: u64,
    /// `hash ver`, the cache key.
    key: String,
    features: Option<Features>,
}

/// A disco#info query the server sent to a client, awaiting its answer.
struct Pending {
    user: String,
    resource: String,
    session: u64,
    hash: String,
    ver: String,
    sent: Instant,
}

/// What a caps announcement in a presence asks the caller to do.
pub enum Announced {
    /// The features are known (verified before): deliver last items if they are new for this session.
    Known { features: Features, changed: bool },
    /// Unknown `ver`: send this disco#info query to the client.
    Query(Element),
    /// Nothing to do (no usable caps, or a query for it is already out).
    Nothing,
}

#[derive(Default)]
pub struct Caps {
    capacity: usize,
    /// Verified `hash ver` → features, with insertion order for eviction.
    verified: Mutex<(HashMap<String, Features>, VecDeque<String>)>,
    /// user → resource → announced caps.
    sessions: Mutex<HashMap<String, HashMap<String, SessionCaps>>>,
    /// IQ id → query.
    pending: Mutex<HashMap<String, Pending>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Caps {
    pub fn new(capacity: usize) -> Caps {
        Caps { capacity: capacity.max(1), ..Default::default() }
    }

    /// A resource sent available presence carrying `c` (a `<c xmlns='…caps'/>`), or none.
    pub fn announce(&self, user: &str, full_jid: &str, resource: &str, session: u64, c: Option<&Element>) -> Announced {
        let Some((hash, node, ver)) = c.and_then(|c| Some((c.attr("hash")?, c.attr("node")?, c.attr("ver")?))) else {
            // No caps (or legacy caps without a hash, which cannot be verified): keep what we knew.
            return Announced::Nothing;
        };
        if digest(hash).is_none() {
            return Announced::Nothing;
        }
        let key = format!("{hash} {ver}");
        let known = lock(&self.verified).0.get(&key).cloned();
        let mut sessions = lock(&self.sessions);
        let slot = sessions.entry(user.to_owned()).or_default();
        let previous = slot.get(resource).filter(|p| p.session == session);
        let changed = previous.is_none_or(|p| p.key != key || p.features.is_none());
        if let Some(features) = known {
            slot.insert(resource.to_owned(), SessionCaps { session, key, features: Some(features.clone()) });
            return Announced::Known { features, changed };
        }
        slot.insert(resource.to_owned(), SessionCaps { session, key, features: None });
        drop(sessions);
        let mut pending = lock(&self.pending);
        let now = Instant::now();
        pending.retain(|_, p| now.duration_since(p.sent) < PENDING_TIMEOUT);
        if pending.values().any(|p| p.user == user && p.resource == resource && p.session == session && p.ver == ver) {
            return Announced::Nothing;
        }
        // As many queries may be out as vers may be cached (`pubsub.caps_cache_size`); the oldest is dropped first.
        if pending.len() >= self.capacity {
            if let Some(oldest) = pending.iter().min_by_key(|(_, p)| p.sent).map(|(id, _)| id.clone()) {
                pending.remove(&oldest);
            }
        }
        let id = format!("caps-{}", crate::context::random_token(12));
        let query = Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_attr("id", id.as_str())
            .with_attr("to", full_jid)
            .with_child(Element::new("query", ns::DISCO_INFO).with_attr("node", format!("{node}#{ver}")));
        let p = Pending {
            user: user.to_owned(),
            resource: resource.to_owned(),
            session,
            hash: hash.to_owned(),
            ver: ver.to_owned(),
            sent: now,
        };
        pending.insert(id, p);
        Announced::Query(query)
    }

    /// An IQ result or error addressed to the server or an account: if it answers one of our queries (same id, from
    /// the full JID asked), verifies it. Returns `None` if it is not ours, `Some(verified)` with the resources whose
    /// features just became known.
    pub fn answer(&self, iq: &Element, from_user: &str, from_resource: &str, session: u64) -> Option<Vec<Resolved>> {
        let id = iq.attr("id")?;
        let mut pending = lock(&self.pending);
        let p = pending.get(id)?;
        if p.user != from_user || p.resource != from_resource || p.session != session {
            // Someone else answering our query: not trusted, and the query stays open for the right client.
            return Some(Vec::new());
        }
        let p = pending.remove(id)?;
        drop(pending);
        if iq.attr("type") != Some("result") {
            return Some(Vec::new());
        }
        let Some(computed) = iq.child("query", ns::DISCO_INFO).and_then(|q| verification_string(q).map(|s| (q, s)))
        else {
            tracing::debug!(user = %p.user, "caps answer without a well-formed disco#info");
            return Some(Vec::new());
        };
        let (query, string) = computed;
        if digest(&p.hash).map(|d| hash(d, &string)).as_deref() != Some(p.ver.as_str()) {
            tracing::info!(user = %p.user, ver = %p.ver, "entity caps hash mismatch: answer not trusted or cached");
            return Some(Vec::new());
        }
        let features: Features = Arc::new(
            query
                .children()
                .filter(|f| f.is("feature", ns::DISCO_INFO))
                .filter_map(|f| f.attr("var"))
                .map(str::to_owned)
                .collect(),
        );
        let key = format!("{} {}", p.hash, p.ver);
        {
            let mut verified = lock(&self.verified);
            let (map, order) = &mut *verified;
            if map.insert(key.clone(), features.clone()).is_none() {
                order.push_back(key.clone());
            }
            while map.len() > self.capacity {
                match order.pop_front() {
                    Some(old) => map.remove(&old),
                    None => break,
                };
            }
        }
        // Every session of any account waiting for this ver learns it now.
        let mut resolved = Vec::new();
        for (user, resources) in lock(&self.sessions).iter_mut() {
            for (resource, caps) in resources.iter_mut() {
                if caps.key == key && caps.features.is_none() {
                    caps.features = Some(features.clone());
                    resolved.push(Resolved {
                        user: user.clone(),
                        resource: resource.clone(),
                        session: caps.session,
                        features: features.clone(),
                    });
                }
            }
        }
        Some(resolved)
    }

    /// The resource went unavailable or its session ended.
    pub fn forget(&self, user: &str, resource: &str, session: u64) {
        let mut sessions = lock(&self.sessions);
        if let Some(resources) = sessions.get_mut(user) {
            if resources.get(resource).is_some_and(|c| c.session == session) {
                resources.remove(resource);
            }
            if resources.is_empty() {
                sessions.remove(user);
            }
        }
    }

    /// The available resources of `user` whose features are verified: (resource, session id, features).
    pub fn resources(&self, user: &str) -> Vec<(String, u64, Features)> {
        lock(&self.sessions)
            .get(user)
            .map(|resources| {
                resources.iter().filter_map(|(r, c)| Some((r.clone(), c.session, c.features.clone()?))).collect()
            })
            .unwrap_or_default()
    }

    /// The available resources of `user` (resource, session id) whose verified features include `feature`.
    pub fn wanting(&self, user: &str, feature: &str) -> Vec<(String, u64)> {
        lock(&self.sessions)
            .get(user)
            .map(|resources| {
                resources
                    .iter()
                    .filter(|(_, c)| c.features.as_ref().is_some_and(|f| f.contains(feature)))
                    .map(|(r, c)| (r.clone(), c.session))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A resource whose features became known through a verified answer.
pub struct Resolved {
    pub user: String,
    pub resource: String,
    pub session: u64,
    pub features: Features,
}

fn digest(name: &str) -> Option<&'static ring::digest::Algorithm> {
    match name {
        "sha-1" => Some(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY),
        "sha-256" => Some(&ring::digest::SHA256),
        "sha-512" => Some(&ring::digest::SHA512),
        _ => None,
    }
}

fn hash(algorithm: &'static ring::digest::Algorithm, s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(algorithm, s.as_bytes()))
}

/// The XEP-0115 §5.1 verification string of a disco#info answer; `None` when §5.4 says the answer is ill-formed
/// (duplicate identities or features, duplicate FORM_TYPEs, a FORM_TYPE with several different values).
pub fn verification_string(query: &Element) -> Option<String> {
    let attr = |e: &Element, name: &str| e.attr(name).unwrap_or_default().to_owned();
    let mut identities: Vec<String> = query
        .children()
        .filter(|c| c.is("identity", ns::DISCO_INFO))
        .map(|i| {
            let lang = i.attr("xml:lang").or_else(|| i.attr("lang")).unwrap_or_default();
            format!("{}/{}/{}/{}", attr(i, "category"), attr(i, "type"), lang, attr(i, "name"))
        })
        .collect();
    let mut features: Vec<String> =
        query.children().filter(|c| c.is("feature", ns::DISCO_INFO)).map(|f| attr(f, "var")).collect();
    identities.sort();
    features.sort();
    let unique = |v: &[String]| v.windows(2).all(|w| w[0] != w[1]);
    if !unique(&identities) || !unique(&features) {
        return None;
    }
    let mut forms: Vec<(String, String)> = Vec::new();
    for x in query.children().filter(|c| c.is("x", drupe_proto::dataform::NS)) {
        let Some(form_type) = x.children().find(|f| f.attr("var") == Some("FORM_TYPE")) else { continue };
        if form_type.attr("type") != Some("hidden") {
            continue; // §5.4: ignore the form, keep processing.
        }
        let mut values: Vec<String> = form_type.children().filter(|v| v.name() == "value").map(Element::text).collect();
        values.dedup();
        if values.len() != 1 {
            return None;
        }
        let mut fields: Vec<(String, Vec<String>)> = x
            .children()
            .filter(|f| f.name() == "field" && f.attr("var").is_some_and(|v| v != "FORM_TYPE"))
            .map(|f| {
                let mut vals: Vec<String> = f.children().filter(|v| v.name() == "value").map(Element::text).collect();
                vals.sort();
                (attr(f, "var"), vals)
            })
            .collect();
        fields.sort();
        let mut s = format!("{}<", values[0]);
        for (var, vals) in fields {
            s.push_str(&var);
            s.push('<');
            for v in vals {
                s.push_str(&v);
                s.push('<');
            }
        }
        forms.push((values[0].clone(), s));
    }
    forms.sort();
    if forms.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    let mut s = String::new();
    for i in identities {
        s.push_str(&i);
        s.push('<');
    }
    for f in features {
        s.push_str(&f);
        s.push('<');
    }
    for (_, f) in forms {
        s.push_str(&f);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0115 §5.3, the complex generation example.
    const COMPLEX: &str =
        "<query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>\
        <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>\
        <identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>\
        <feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>\
        <feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/>\
        <x xmlns='jabber:x:data' type='result'>\
          <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>\
          <field var='ip_version'><value>ipv4</value><value>ipv6</value></field>\
          <field var='os'><value>Mac</value></field><field var='os_version'><value>10.5.1</value></field>\
          <field var='software'><value>Psi</value></field><field var='software_version'><value>0.11</value></field>\
        </x></query>";

    #[test]
    fn the_xep_examples_hash_to_their_ver() {
        let simple = Element::parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='client' name='Exodus 0.9.1' type='pc'/>\
             <feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>\
             <feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/>\
             </query>",
        )
        .unwrap();
        let s = verification_string(&simple).unwrap();
        assert_eq!(hash(digest("sha-1").unwrap(), &s), "QgayPKawpkPSDYmwT/WM94uAlu0=");
        let complex = Element::parse(COMPLEX).unwrap();
        let s = verification_string(&complex).unwrap();
        assert_eq!(hash(digest("sha-1").unwrap(), &s), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
    }

    /// Announces `features` honestly from `user`'s resource `r` (session `id`) and answers the query, if one came.
    fn announce_and_answer(caps: &Caps, user: &str, id: u64, features: &[&str]) -> bool {
        let mut query = String::from(
            "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/>",
        );
        for f in features {
            query.push_str(&format!("<feature var='{f}'/>"));
        }
        query.push_str("</query>");
        let query = Element::parse(&query).unwrap();
        let ver = hash(digest("sha-1").unwrap(), &verification_string(&query).unwrap());
        let c = Element::new("c", NS).with_attr("hash", "sha-1").with_attr("node", "n").with_attr("ver", ver);
        match caps.announce(user, &format!("{user}@x/r"), "r", id, Some(&c)) {
            Announced::Query(iq) => {
                let answer = Element::new("iq", ns::CLIENT)
                    .with_attr("type", "result")
                    .with_attr("id", iq.attr("id").unwrap())
                    .with_child(query);
                let resolved = caps.answer(&answer, user, "r", id).expect("our query");
                assert_eq!(resolved.len(), 1);
                true
            }
            Announced::Known { .. } => false,
            Announced::Nothing => panic!("nothing to do for a fresh session"),
        }
    }

    #[test]
    fn the_cache_is_bounded_and_forgets_the_oldest_ver() {
        let caps = Caps::new(1);
        assert!(announce_and_answer(&caps, "a", 1, &["x+notify"]));
        assert!(!announce_and_answer(&caps, "b", 2, &["x+notify"]), "cached");
        assert!(announce_and_answer(&caps, "c", 3, &["y+notify"]));
        assert!(announce_and_answer(&caps, "d", 4, &["x+notify"]), "evicted by the second ver");
        assert_eq!(caps.wanting("d", "x+notify"), [("r".to_owned(), 4)]);
        caps.forget("d", "r", 4);
        assert!(caps.wanting("d", "x+notify").is_empty());
    }

    #[test]
    fn duplicate_features_are_ill_formed() {
        let dup = Element::parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/>\
             <feature var='a'/><feature var='a'/></query>",
        )
        .unwrap();
        assert_eq!(verification_string(&dup), None);
    }
}
