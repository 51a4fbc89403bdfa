//! XEP-0084 User Avatar ↔ vCard photo (XEP-0398), and the XEP-0153 photo hash on presence. Publishing avatar
//! metadata updates the stored vCard's PHOTO; storing a vCard with a PHOTO publishes the avatar data and metadata;
//! the current avatar's id (its SHA-1) is added to available presence as `<x xmlns='vcard-temp:x:update'/>`.

use base64::Engine;
use drupe_proto::xml::Element;
use drupe_store::{ItemsQuery, NodeConfig};

use super::items;
use crate::context::Context;

pub const METADATA: &str = "urn:xmpp:avatar:metadata";
pub const DATA: &str = "urn:xmpp:avatar:data";
/// XEP-0398 §3: advertised on the account.
pub const CONVERSION: &str = "urn:xmpp:pep-vcard-conversion:0";
pub const VCARD: &str = "vcard-temp";
pub const VCARD_UPDATE: &str = "vcard-temp:x:update";

fn lock(ctx: &Context) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Option<String>>> {
    ctx.pep.avatars.lock().unwrap_or_else(|e| e.into_inner())
}

/// The id a metadata payload announces (the `<info/>` without `url`, i.e. the one served over PEP); `""` when the
/// avatar is disabled (empty `<metadata/>`, XEP-0084 §4.5).
fn announced_id(metadata: &Element) -> String {
    metadata
        .children()
        .find(|i| i.is("info", METADATA) && i.attr("url").is_none_or(str::is_empty))
        .and_then(|i| i.attr("id"))
        .unwrap_or_default()
        .to_owned()
}

/// The account's avatar hash: `Some("")` if it disabled its avatar, `None` if it never published one.
pub async fn hash(ctx: &Context, user: &str) -> Option<String> {
    if let Some(known) = lock(ctx).get(user) {
        return known.clone();
    }
    let hash = match ctx.store.pubsub_last_item(user, METADATA).await {
        Ok(Some(item)) => Element::parse(&item.payload).map(|m| announced_id(&m)),
        Ok(None) => None,
        Err(_) => return None,
    };
    // Only accounts with a session are worth remembering (the hook that forgets runs when the last one ends).
    if !ctx.router.bound(user).is_empty() {
        lock(ctx).insert(user.to_owned(), hash.clone());
    }
    hash
}

/// The avatar changed or the account's last session ended: read it again next time.
pub fn forget(ctx: &Context, user: &str) {
    lock(ctx).remove(user);
}

/// XEP-0398 §4: adds `<x xmlns='vcard-temp:x:update'><photo>hash</photo></x>` (XEP-0153) to an available presence,
/// unless the client already says which photo it has (an empty `<x/>` gets the photo).
pub async fn stamp_presence(ctx: &Context, user: &str, mut presence: Element) -> Element {
    if presence.child("x", VCARD_UPDATE).is_some_and(|x| x.child("photo", VCARD_UPDATE).is_some()) {
        return presence;
    }
    let Some(hash) = hash(ctx, user).await else { return presence };
    let photo = Element::new("photo", VCARD_UPDATE).with_text(hash);
    match presence.child_mut("x", VCARD_UPDATE) {
        Some(x) => x.push(photo),
        None => presence.push(Element::new("x", VCARD_UPDATE).with_child(photo)),
    }
    presence
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The vCard without its PHOTO, or an empty vCard.
async fn vcard_without_photo(ctx: &Context, owner: &str) -> Element {
    let stored = ctx.store.vcard(owner).await.ok().flatten().and_then(|v| Element::parse(&v));
    let mut vcard = stored.filter(|v| v.is("vCard", VCARD)).unwrap_or_else(|| Element::new("vCard", VCARD));
    vcard.remove_children(|c| c.is("PHOTO", VCARD));
    vcard
}

/// The owner published avatar metadata: remember its hash and, when a client published it, mirror it into the
/// vCard PHOTO (XEP-0398 §4).
pub async fn metadata_published(ctx: &Context, owner: &str, metadata: &Element, from_client: bool) {
    let id = announced_id(metadata);
    lock(ctx).insert(owner.to_owned(), Some(id.clone()));
    if !from_client {
        return;
    }
    let mut vcard = vcard_without_photo(ctx, owner).await;
    if !id.is_empty() {
        let query = ItemsQuery { ids: vec![id.clone()], max: 1, ..Default::default() };
        let data = match ctx.store.pubsub_items(owner, DATA, &query).await {
            Ok(page) => page.items.into_iter().next().and_then(|i| Element::parse(&i.payload)),
            Err(_) => None,
        };
        let Some(data) = data else {
            tracing::debug!(owner, "avatar metadata without its data: vCard left as it was");
            return;
        };
        // §3.1: the data must be the image the id names.
        let b64: String = data.text().chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD.decode(&b64).unwrap_or_default();
        if hex(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &bytes).as_ref()) != id {
            tracing::debug!(owner, "avatar data does not hash to its id: vCard left as it was");
            return;
        }
        let kind = metadata
            .children()
            .find(|i| i.is("info", METADATA) && i.attr("id") == Some(id.as_str()))
            .and_then(|i| i.attr("type"))
            .unwrap_or("image/png");
        vcard.push(
            Element::new("PHOTO", VCARD)
                .with_child(Element::new("TYPE", VCARD).with_text(kind))
                .with_child(Element::new("BINVAL", VCARD).with_text(b64)),
        );
    }
    let xml = vcard.to_xml();
    if xml.len() > ctx.config.pubsub.max_vcard_bytes {
        tracing::debug!(owner, "avatar too large for the vCard limit: vCard left as it was");
        return;
    }
    if let Err(e) = ctx.store.vcard_set(owner, &xml).await {
        tracing::warn!(error = %e, "cannot mirror the avatar into the vCard");
    }
}

/// A client stored a vCard: publish its PHOTO as the PEP avatar (XEP-0398 §5), or disable the avatar when the
/// PHOTO was removed.
pub async fn vcard_stored(ctx: &Context, owner: &str, publisher: &str, vcard: &Element) {
    let photo = vcard.child("PHOTO", VCARD);
    let binval: Option<String> =
        photo.and_then(|p| p.child("BINVAL", VCARD)).map(|b| b.text().chars().filter(|c| !c.is_whitespace()).collect());
    let current = hash(ctx, owner).await;
    let options = || items::Options { create: NodeConfig::default(), preconditions: None, from_client: false };
    let Some(binval) = binval.filter(|b| !b.is_empty()) else {
        if current.is_some_and(|h| !h.is_empty()) {
            let empty = Element::new("metadata", METADATA);
            if let Err(e) = items::publish(ctx, owner, publisher, METADATA, None, empty, options()).await {
                tracing::debug!(?e, "cannot disable the PEP avatar");
            }
        }
        return;
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&binval) else { return };
    let id = hex(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &bytes).as_ref());
    if current.as_deref() == Some(id.as_str()) {
        return;
    }
    let kind = photo.and_then(|p| p.child("TYPE", VCARD)).map(|t| t.text()).unwrap_or_else(|| "image/png".into());
    let data = Element::new("data", DATA).with_text(binval);
    if let Err(e) = items::publish(ctx, owner, publisher, DATA, Some(&id), data, options()).await {
        return tracing::debug!(?e, "cannot publish the vCard photo as avatar data");
    }
    let info = Element::new("info", METADATA)
        .with_attr("id", id.as_str())
        .with_attr("bytes", bytes.len().to_string())
        .with_attr("type", kind.trim());
    let metadata = Element::new("metadata", METADATA).with_child(info);
    if let Err(e) = items::publish(ctx, owner, publisher, METADATA, Some(&id), metadata, options()).await {
        tracing::debug!(?e, "cannot publish the vCard photo as avatar metadata");
    }
}
