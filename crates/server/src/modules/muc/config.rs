//! A room's configuration (XEP-0045 §10.2): the `muc#roomconfig` form an owner gets and submits, the same form
//! as stored for a persistent room, and the room's disco#info (§6.4) with its `muc#roominfo` form.

use drupe_proto::dataform::{self, NS as XDATA};
use drupe_proto::error::{Condition, StanzaError};
use drupe_proto::ns;
use drupe_proto::xml::Element;

pub const NS_ROOMCONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";
pub const NS_ROOMINFO: &str = "http://jabber.org/protocol/muc#roominfo";

/// Who may send private messages through the room (`muc#roomconfig_allowpm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllowPm {
    Anyone,
    Participants,
    Moderators,
    None,
}

impl AllowPm {
    fn as_str(self) -> &'static str {
        match self {
            AllowPm::Anyone => "anyone",
            AllowPm::Participants => "participants",
            AllowPm::Moderators => "moderators",
            AllowPm::None => "none",
        }
    }

    fn parse(s: &str) -> Option<AllowPm> {
        Some(match s {
            "anyone" => AllowPm::Anyone,
            "participants" => AllowPm::Participants,
            "moderators" => AllowPm::Moderators,
            "none" => AllowPm::None,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomConfig {
    pub name: String,
    pub description: String,
    pub persistent: bool,
    pub public: bool,
    pub members_only: bool,
    pub moderated: bool,
    /// `muc#roomconfig_roomsecret`, when `passwordprotectedroom` is on.
    pub password: Option<String>,
    pub max_users: usize,
    /// `muc#roomconfig_whois` = anyone: a non-anonymous room.
    pub whois_anyone: bool,
    pub allow_pm: AllowPm,
    /// Occupants (not only moderators) may change the subject.
    pub change_subject: bool,
    /// Members may invite others to a members-only room (`muc#roomconfig_allowinvites`).
    pub allow_invites: bool,
    /// Messages are kept in the room archive (XEP-0313), for persistent rooms.
    pub archiving: bool,
}

impl RoomConfig {
    pub fn new(max_users: usize, archiving: bool) -> RoomConfig {
        RoomConfig {
            name: String::new(),
            description: String::new(),
            persistent: false,
            public: true,
            members_only: false,
            moderated: false,
            password: None,
            max_users,
            whois_anyone: false,
            allow_pm: AllowPm::Anyone,
            change_subject: false,
            allow_invites: false,
            archiving,
        }
    }

    /// Whether messages go to the room archive: only persistent rooms have one (temporary rooms stay in memory).
    pub fn archived(&self) -> bool {
        self.persistent && self.archiving
    }

    /// The configuration as a form of `kind`: "form" (for an owner to fill in) or "submit" (as stored).
    pub fn to_form(&self, kind: &str, max_users_limit: usize) -> Element {
        let mut x = dataform::form(kind, NS_ROOMCONFIG);
        let text = |var: &str, label: &str, value: &str| value_field(var, "text-single", label, &[value]);
        let flag = |var: &str, label: &str, on: bool| value_field(var, "boolean", label, &[if on { "1" } else { "0" }]);
        x.push(text("muc#roomconfig_roomname", "Name", &self.name));
        x.push(text("muc#roomconfig_roomdesc", "Description", &self.description));
        x.push(flag("muc#roomconfig_persistentroom", "Persistent (kept when empty)", self.persistent));
        x.push(flag("muc#roomconfig_publicroom", "Listed in the room directory", self.public));
        x.push(flag("muc#roomconfig_membersonly", "Members only", self.members_only));
        x.push(flag("muc#roomconfig_moderatedroom", "Moderated (only participants speak)", self.moderated));
        x.push(flag("muc#roomconfig_passwordprotectedroom", "Password protected", self.password.is_some()));
        x.push(value_field(
            "muc#roomconfig_roomsecret",
            "text-private",
            "Password",
            &[self.password.as_deref().unwrap_or("")],
        ));
        let mut max =
            value_field("muc#roomconfig_maxusers", "list-single", "Most occupants", &[&self.max_users.to_string()]);
        if kind == "form" {
            for n in [10, 20, 30, 50, 100, 200, 500, 1000].into_iter().filter(|n| *n <= max_users_limit) {
                max.push(option(&n.to_string()));
            }
            max.push(option(&max_users_limit.to_string()));
        }
        x.push(max);
        let mut whois = value_field(
            "muc#roomconfig_whois",
            "list-single",
            "Who may see real JIDs",
            &[if self.whois_anyone { "anyone" } else { "moderators" }],
        );
        let mut allow_pm = value_field(
            "muc#roomconfig_allowpm",
            "list-single",
            "Who may send private messages",
            &[self.allow_pm.as_str()],
        );
        if kind == "form" {
            whois.push(option("moderators"));
            whois.push(option("anyone"));
            for o in ["anyone", "participants", "moderators", "none"] {
                allow_pm.push(option(o));
            }
        }
        x.push(whois);
        x.push(allow_pm);
        x.push(flag("muc#roomconfig_changesubject", "Occupants may change the subject", self.change_subject));
        x.push(flag("muc#roomconfig_allowinvites", "Members may invite", self.allow_invites));
        x.push(flag("muc#roomconfig_enablearchiving", "Keep a message archive", self.archiving));
        x
    }

    /// Applies a submitted form (XEP-0045 §10.2): fields not given keep their value; unknown fields are ignored
    /// (other servers' fields, XEP-0004 §3.4). Returns the new configuration.
    pub fn apply(&self, x: &Element, max_users_limit: usize) -> Result<RoomConfig, StanzaError> {
        let mut c = self.clone();
        let bad = |text: &str| StanzaError::new(Condition::NotAcceptable).with_text(text);
        let mut protected = None;
        let mut secret = None;
        for (var, values) in dataform::fields(x) {
            let one = values.first().map(String::as_str).unwrap_or("");
            let flag = || match one {
                "1" | "true" => Ok(true),
                "0" | "false" | "" => Ok(false),
                _ => Err(bad("a boolean field is 0 or 1")),
            };
            match var.as_str() {
                "FORM_TYPE" if one != NS_ROOMCONFIG && !one.is_empty() => return Err(bad("unknown FORM_TYPE")),
                "muc#roomconfig_roomname" => c.name = one.to_owned(),
                "muc#roomconfig_roomdesc" => c.description = one.to_owned(),
                "muc#roomconfig_persistentroom" => c.persistent = flag()?,
                "muc#roomconfig_publicroom" => c.public = flag()?,
                "muc#roomconfig_membersonly" => c.members_only = flag()?,
                "muc#roomconfig_moderatedroom" => c.moderated = flag()?,
                "muc#roomconfig_passwordprotectedroom" => protected = Some(flag()?),
                "muc#roomconfig_roomsecret" => secret = Some(one.to_owned()),
                "muc#roomconfig_maxusers" => {
                    c.max_users = match one {
                        "" | "none" => max_users_limit,
                        n => n.parse::<usize>().map_err(|_| bad("maxusers is a number"))?.clamp(1, max_users_limit),
                    }
                }
                "muc#roomconfig_whois" => {
                    c.whois_anyone = match one {
                        "anyone" => true,
                        "moderators" | "" => false,
                        _ => return Err(bad("whois is moderators or anyone")),
                    }
                }
                "muc#roomconfig_allowpm" => c.allow_pm = AllowPm::parse(one).ok_or_else(|| bad("bad allowpm"))?,
                "muc#roomconfig_changesubject" => c.change_subject = flag()?,
                "muc#roomconfig_allowinvites" => c.allow_invites = flag()?,
                "muc#roomconfig_enablearchiving" | "mam" => c.archiving = flag()?,
                _ => {}
            }
        }
        let secret = secret.or(c.password.clone()).filter(|s| !s.is_empty());
        c.password = match protected.unwrap_or(c.password.is_some()) {
            true => Some(secret.ok_or_else(|| bad("a password-protected room needs a roomsecret"))?),
            false => None,
        };
        Ok(c)
    }

    /// The room's disco#info features (XEP-0045 §6.4) with the service-wide ones.
    pub fn features(&self) -> Vec<&'static str> {
        let pick = |on: bool, yes: &'static str, no: &'static str| if on { yes } else { no };
        let mut f = vec![
            super::room::NS_MUC,
            pick(self.persistent, "muc_persistent", "muc_temporary"),
            pick(self.public, "muc_public", "muc_hidden"),
            pick(self.members_only, "muc_membersonly", "muc_open"),
            pick(self.moderated, "muc_moderated", "muc_unmoderated"),
            pick(self.whois_anyone, "muc_nonanonymous", "muc_semianonymous"),
            pick(self.password.is_some(), "muc_passwordprotected", "muc_unsecured"),
            super::archive::SID,
            super::archive::MODERATE,
            super::archive::MODERATE_0,
            super::SELF_PING,
            super::OCCUPANT_ID,
            ns::DISCO_INFO,
        ];
        if self.archived() {
            f.push(super::archive::MAM);
        }
        f
    }

    /// The `muc#roominfo` form of the room's disco#info.
    pub fn roominfo(&self, occupants: usize, subject: &str) -> Element {
        let mut x = dataform::form("result", NS_ROOMINFO);
        x.push(value_field("muc#roominfo_description", "text-single", "Description", &[&self.description]));
        x.push(value_field("muc#roominfo_occupants", "text-single", "Occupants", &[&occupants.to_string()]));
        x.push(value_field("muc#roominfo_subject", "text-single", "Subject", &[subject]));
        x.push(value_field("muc#roomconfig_roomname", "text-single", "Name", &[&self.name]));
        x.push(value_field(
            "muc#roomconfig_changesubject",
            "boolean",
            "Occupants may change the subject",
            &[if self.change_subject { "1" } else { "0" }],
        ));
        x
    }
}

fn value_field(var: &str, kind: &str, label: &str, values: &[&str]) -> Element {
    let mut f = dataform::field(var, kind).with_attr("label", label);
    for v in values {
        f.push(Element::new("value", XDATA).with_text(*v));
    }
    f
}

fn option(value: &str) -> Element {
    Element::new("option", XDATA).with_child(Element::new("value", XDATA).with_text(value))
}
