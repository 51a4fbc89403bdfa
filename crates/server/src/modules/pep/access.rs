//! XEP-0060 §4.5 access models as PEP applies them (XEP-0163 §5): who may retrieve a node's items and receive its
//! notifications. The owner always may; `open` lets anyone; `presence` lets contacts subscribed to the owner's
//! presence; `whitelist` lets only JIDs the owner affiliated as member or publisher; an outcast never may.

use drupe_proto::error::Condition;
use drupe_store::{AccessModel, Affiliation, NodeConfig, Subscription};

use super::Fail;
use crate::context::Context;

/// Whether `reader` (a local username; its bare JID is `reader_bare`) may see `owner`'s node.
pub async fn may_read(
    ctx: &Context,
    owner: &str,
    reader: &str,
    reader_bare: &str,
    node: &str,
    config: &NodeConfig,
) -> Result<(), Fail> {
    if reader == owner {
        return Ok(());
    }
    let affiliations = ctx.store.pubsub_affiliations(owner, node).await.map_err(Fail::store)?;
    let affiliation = affiliations.into_iter().find(|(jid, _)| jid == reader_bare).map(|(_, a)| a);
    match (config.access_model, affiliation) {
        // XEP-0060 §4.1: an outcast is refused whatever the model.
        (_, Some(Affiliation::Outcast)) => Err(Condition::Forbidden.into()),
        (AccessModel::Open, _) => Ok(()),
        (AccessModel::Presence, _) => {
            let item = ctx.store.roster_item(owner, reader_bare).await.map_err(Fail::store)?;
            if item.is_some_and(|i| matches!(i.subscription, Subscription::From | Subscription::Both)) {
                Ok(())
            } else {
                Err(Fail::App(Condition::NotAuthorized, "presence-subscription-required"))
            }
        }
        (AccessModel::Whitelist, Some(Affiliation::Member | Affiliation::Publisher)) => Ok(()),
        (AccessModel::Whitelist, _) => Err(Fail::App(Condition::NotAllowed, "closed-node")),
    }
}
