//! The fixed permission vocabulary and the roles every organization starts with (DESIGN §6).

use nox_persistence::iam::orgs::RoleTemplate;
use serde::{Deserialize, Serialize};

/// One right inside an organization. Roles hold lists of these as strings (`roles.permissions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// Rename or delete the organization, change its plan and settings.
    #[serde(rename = "org:admin")]
    OrgAdmin,
    /// Invite, remove and re-role members.
    #[serde(rename = "members:manage")]
    MembersManage,
    /// Create, edit and delete roles.
    #[serde(rename = "roles:manage")]
    RolesManage,
    /// Create, edit and delete projects and workspaces.
    #[serde(rename = "project:manage")]
    ProjectManage,
    /// Open workspaces: sync and presence, read-only.
    #[serde(rename = "workspace:read")]
    WorkspaceRead,
    /// Edit workspace content and take edit locks.
    #[serde(rename = "workspace:write")]
    WorkspaceWrite,
    /// Break other users' edit locks.
    #[serde(rename = "locks:override")]
    LocksOverride,
    /// Read the audit log.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Create and revoke API keys.
    #[serde(rename = "api_keys:manage")]
    ApiKeysManage,
    /// Create, edit and delete warehouse content: templates, invader definitions, collections.
    #[serde(rename = "assets:manage")]
    AssetsManage,
}

impl Permission {
    pub const ALL: [Permission; 10] = [
        Permission::OrgAdmin,
        Permission::MembersManage,
        Permission::RolesManage,
        Permission::ProjectManage,
        Permission::WorkspaceRead,
        Permission::WorkspaceWrite,
        Permission::LocksOverride,
        Permission::AuditRead,
        Permission::ApiKeysManage,
        Permission::AssetsManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::OrgAdmin => "org:admin",
            Permission::MembersManage => "members:manage",
            Permission::RolesManage => "roles:manage",
            Permission::ProjectManage => "project:manage",
            Permission::WorkspaceRead => "workspace:read",
            Permission::WorkspaceWrite => "workspace:write",
            Permission::LocksOverride => "locks:override",
            Permission::AuditRead => "audit:read",
            Permission::ApiKeysManage => "api_keys:manage",
            Permission::AssetsManage => "assets:manage",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether a stored permission list grants `self`.
    pub fn granted_by(self, list: &[String]) -> bool {
        list.iter().any(|p| p == self.as_str())
    }
}

/// A set of [`Permission`]s as a bitmask: `Copy`, so an [`crate::auth::AuthUser`] carrying an API
/// key's scopes stays `Copy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u16);

impl PermissionSet {
    pub const ALL: PermissionSet = PermissionSet((1 << Permission::ALL.len()) - 1);

    fn bit(p: Permission) -> u16 {
        let index = Permission::ALL.iter().position(|q| *q == p).unwrap_or(0);
        1 << index
    }

    /// The known permissions in `list`; unknown strings are ignored.
    pub fn from_strings(list: &[String]) -> PermissionSet {
        PermissionSet(
            list.iter()
                .filter_map(|s| Permission::parse(s))
                .fold(0, |acc, p| acc | Self::bit(p)),
        )
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & Self::bit(p) != 0
    }

    /// Keeps the entries of `list` this set contains.
    pub fn filter(self, list: Vec<String>) -> Vec<String> {
        list.into_iter()
            .filter(|s| Permission::parse(s).is_some_and(|p| self.contains(p)))
            .collect()
    }

    pub fn to_strings(self) -> Vec<String> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.contains(*p))
            .map(|p| p.as_str().to_string())
            .collect()
    }
}

pub const OWNER_ROLE: &str = "Owner";

/// Owner, Admin, Editor and Viewer with their permission lists.
pub fn default_roles() -> Vec<RoleTemplate> {
    use Permission::*;
    let list = |ps: &[Permission]| ps.iter().map(|p| p.as_str().to_string()).collect();
    vec![
        RoleTemplate {
            name: OWNER_ROLE,
            permissions: list(&Permission::ALL),
        },
        RoleTemplate {
            name: "Admin",
            permissions: list(&[
                MembersManage,
                RolesManage,
                ProjectManage,
                WorkspaceRead,
                WorkspaceWrite,
                LocksOverride,
                AuditRead,
                ApiKeysManage,
                AssetsManage,
            ]),
        },
        RoleTemplate {
            name: "Editor",
            permissions: list(&[WorkspaceRead, WorkspaceWrite, AssetsManage]),
        },
        RoleTemplate {
            name: "Viewer",
            permissions: list(&[WorkspaceRead]),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
            let json = serde_json::to_string(&p).expect("json");
            assert_eq!(json, format!("\"{}\"", p.as_str()));
        }
        assert_eq!(Permission::parse("workspace:delete"), None);
    }

    #[test]
    fn permission_sets_filter_lists() {
        let set = PermissionSet::from_strings(&["workspace:read".into(), "bogus".into()]);
        assert!(set.contains(Permission::WorkspaceRead));
        assert!(!set.contains(Permission::WorkspaceWrite));
        assert_eq!(set.to_strings(), ["workspace:read"]);
        let filtered = set.filter(vec!["workspace:write".into(), "workspace:read".into()]);
        assert_eq!(filtered, ["workspace:read"]);
        assert_eq!(PermissionSet::ALL.to_strings().len(), Permission::ALL.len());
    }

    #[test]
    fn owner_holds_everything_and_viewer_only_reads() {
        let roles = default_roles();
        let owner = &roles[0];
        assert!(Permission::ALL
            .iter()
            .all(|p| p.granted_by(&owner.permissions)));
        let viewer = roles.iter().find(|r| r.name == "Viewer").expect("viewer");
        assert!(Permission::WorkspaceRead.granted_by(&viewer.permissions));
        assert!(!Permission::WorkspaceWrite.granted_by(&viewer.permissions));
    }
}
