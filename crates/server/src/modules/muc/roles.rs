//! XEP-0045 §5: affiliations (long-lived, per bare JID) and roles (per visit), and which changes whom may make
//! (§8 moderator, §9 admin, §10 owner use cases).

use drupe_proto::error::Condition;

/// §5.2, in rank order (`Outcast` lowest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Affiliation {
    Outcast,
    None,
    Member,
    Admin,
    Owner,
}

/// §5.1, in rank order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    None,
    Visitor,
    Participant,
    Moderator,
}

impl Affiliation {
    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Owner => "owner",
            Affiliation::Admin => "admin",
            Affiliation::Member => "member",
            Affiliation::None => "none",
            Affiliation::Outcast => "outcast",
        }
    }

    pub fn parse(s: &str) -> Option<Affiliation> {
        Some(match s {
            "owner" => Affiliation::Owner,
            "admin" => Affiliation::Admin,
            "member" => Affiliation::Member,
            "none" => Affiliation::None,
            "outcast" => Affiliation::Outcast,
            _ => return None,
        })
    }

    /// The role an occupant with this affiliation enters with (§5.1.2).
    pub fn default_role(self, moderated: bool) -> Role {
        match self {
            Affiliation::Owner | Affiliation::Admin => Role::Moderator,
            Affiliation::Member => Role::Participant,
            Affiliation::None if moderated => Role::Visitor,
            Affiliation::None => Role::Participant,
            Affiliation::Outcast => Role::None,
        }
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Moderator => "moderator",
            Role::Participant => "participant",
            Role::Visitor => "visitor",
            Role::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "moderator" => Role::Moderator,
            "participant" => Role::Participant,
            "visitor" => Role::Visitor,
            "none" => Role::None,
            _ => return None,
        })
    }
}

/// May an actor (`actor` affiliation and role) give `target` (its affiliation) the role `new`? §8.2-8.6 and
/// §9.6-9.7: moderators kick and manage voice below admins; only admins and owners grant or revoke moderator; no
/// one changes the role of someone of higher affiliation, nor an admin's or owner's unless at least admin.
pub fn may_set_role(actor: (Affiliation, Role), target: Affiliation, new: Role) -> Result<(), Condition> {
    let (affiliation, role) = actor;
    if role != Role::Moderator {
        return Err(Condition::Forbidden);
    }
    let admin = affiliation >= Affiliation::Admin;
    if new == Role::Moderator && !admin {
        return Err(Condition::Forbidden);
    }
    // Admins and owners are out of a plain moderator's reach (§8.2), and stay moderators while their affiliation
    // lasts, whoever asks (§9.7: revoke the affiliation first).
    if target >= Affiliation::Admin && (!admin || new != Role::Moderator) {
        return Err(Condition::NotAllowed);
    }
    Ok(())
}

/// May an actor with affiliation `actor` change `target`'s affiliation from `old` to `new`? §9: admins manage
/// members and outcasts below admin; §10: only owners grant or revoke admin and owner.
pub fn may_set_affiliation(actor: Affiliation, old: Affiliation, new: Affiliation) -> Result<(), Condition> {
    if actor < Affiliation::Admin {
        return Err(Condition::Forbidden);
    }
    if actor == Affiliation::Owner {
        return Ok(());
    }
    if old >= Affiliation::Admin || new >= Affiliation::Admin {
        return Err(Condition::NotAllowed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moderators_kick_below_admin_and_admins_manage_moderators() {
        let moderator = (Affiliation::None, Role::Moderator);
        assert_eq!(may_set_role(moderator, Affiliation::Member, Role::None), Ok(()));
        assert_eq!(may_set_role(moderator, Affiliation::Admin, Role::None), Err(Condition::NotAllowed));
        assert_eq!(may_set_role(moderator, Affiliation::None, Role::Moderator), Err(Condition::Forbidden));
        assert_eq!(
            may_set_role((Affiliation::Member, Role::Participant), Affiliation::None, Role::Visitor),
            Err(Condition::Forbidden)
        );
        assert_eq!(may_set_role((Affiliation::Admin, Role::Moderator), Affiliation::None, Role::Moderator), Ok(()));
        assert_eq!(
            may_set_role((Affiliation::Owner, Role::Moderator), Affiliation::Admin, Role::None),
            Err(Condition::NotAllowed)
        );
    }

    #[test]
    fn admins_manage_members_and_owners_manage_everyone() {
        assert_eq!(may_set_affiliation(Affiliation::Admin, Affiliation::None, Affiliation::Outcast), Ok(()));
        assert_eq!(
            may_set_affiliation(Affiliation::Admin, Affiliation::Owner, Affiliation::Outcast),
            Err(Condition::NotAllowed)
        );
        assert_eq!(
            may_set_affiliation(Affiliation::Admin, Affiliation::None, Affiliation::Admin),
            Err(Condition::NotAllowed)
        );
        assert_eq!(
            may_set_affiliation(Affiliation::Member, Affiliation::None, Affiliation::Member),
            Err(Condition::Forbidden)
        );
        assert_eq!(may_set_affiliation(Affiliation::Owner, Affiliation::Admin, Affiliation::Owner), Ok(()));
    }
}
