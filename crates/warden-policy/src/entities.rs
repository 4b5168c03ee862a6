//! The static entities of a bundle: agents, users, roles, upstreams and tools, built once from
//! the config and the catalog so a decision only looks them up.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use warden_core::{Catalog, Config, DataClasses, Diagnostic, Diagnostics, Mode, ToolInfo};

use crate::schema::{GeneratedSchema, NAMESPACE, risk_level, upstream_names};

/// The kinds of entity Warden puts in front of Cedar.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Agent,
    User,
    Role,
    Upstream,
    Tool,
    Action,
}

impl Kind {
    fn type_name(self) -> &'static str {
        match self {
            Kind::Agent => "Agent",
            Kind::User => "User",
            Kind::Role => "Role",
            Kind::Upstream => "Upstream",
            Kind::Tool => "Tool",
            Kind::Action => "Action",
        }
    }
}

/// `Warden::<Kind>::"<id>"`.
pub(crate) fn uid(kind: Kind, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(kind.entity_type(), EntityId::new(id))
}

impl Kind {
    #[allow(clippy::expect_used)]
    fn entity_type(self) -> EntityTypeName {
        let qualified = format!("{NAMESPACE}::{}", self.type_name());
        // A fixed identifier in a fixed namespace: this parses for every `Kind` (see the tests).
        EntityTypeName::from_str(&qualified)
            .expect("Warden's entity type names are valid Cedar names")
    }
}

/// What a decision needs to know about an agent besides its entity.
#[derive(Debug, Clone)]
pub(crate) struct AgentRef {
    pub uid: EntityUid,
    pub delegation: bool,
    /// The agent's configured mode (policy tests use it when a case names none).
    pub mode: Mode,
}

/// The entity store of one bundle.
#[derive(Debug, Clone)]
pub(crate) struct StaticEntities {
    pub entities: Entities,
    pub agents: HashMap<String, AgentRef>,
    pub users: HashMap<String, EntityUid>,
    /// The highest data class rank: the clearance of a task that sets none.
    pub highest_class: i64,
    pub classes: DataClasses,
}

impl StaticEntities {
    pub fn build(
        config: &Config,
        catalog: &Catalog,
        schema: &GeneratedSchema,
    ) -> Result<Self, Diagnostics> {
        let mut all = Vec::new();
        let mut diags = Diagnostics::default();
        let mut push = |entity: Result<Entity, String>| match entity {
            Ok(e) => all.push(e),
            Err(message) => diags.push(Diagnostic::new(&config.path, 0, 0, message)),
        };
        for role in role_names(config) {
            push(Ok(Entity::new_no_attrs(
                uid(Kind::Role, &role),
                HashSet::new(),
            )));
        }
        for user in &config.users {
            push(Ok(Entity::new_no_attrs(
                uid(Kind::User, &user.id),
                role_uids(&user.roles),
            )));
        }
        for agent in &config.agents {
            push(agent_entity(agent, &config.classes));
        }
        for upstream in upstream_names(config, catalog) {
            push(upstream_entity(config, &upstream));
        }
        for tool in catalog.iter() {
            push(tool_entity(config, tool));
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        // With the schema, Cedar checks every attribute against its declared type and adds the
        // action entities (tools and their groups) with their hierarchy.
        let entities = Entities::from_entities(all, Some(schema.schema())).map_err(|e| {
            Diagnostics::from(Diagnostic::new(
                &config.path,
                0,
                0,
                format!("cannot build policy entities: {e}"),
            ))
        })?;
        let agents = config
            .agents
            .iter()
            .map(|a| {
                (
                    a.id.clone(),
                    AgentRef {
                        uid: uid(Kind::Agent, &a.id),
                        delegation: a.delegation,
                        mode: a.mode,
                    },
                )
            })
            .collect();
        let users = config
            .users
            .iter()
            .map(|u| (u.id.clone(), uid(Kind::User, &u.id)))
            .collect();
        Ok(Self {
            entities,
            agents,
            users,
            highest_class: i64::from(config.classes.highest().0),
            classes: config.classes.clone(),
        })
    }
}

fn role_uids(roles: &[String]) -> HashSet<EntityUid> {
    roles.iter().map(|r| uid(Kind::Role, r)).collect()
}

/// Declared roles plus any an agent or user names (config validation makes these the same;
/// taking the union keeps `in Role::"x"` working even if it did not).
fn role_names(config: &Config) -> std::collections::BTreeSet<String> {
    let declared = config.roles.iter().map(|r| r.name.clone());
    let used = config.agents.iter().flat_map(|a| a.roles.iter().cloned());
    let by_users = config.users.iter().flat_map(|u| u.roles.iter().cloned());
    declared.chain(used).chain(by_users).collect()
}

/// A class's rank; an unknown class ranks lowest, so it never grants more than the least.
fn class_rank(classes: &DataClasses, name: &str) -> i64 {
    classes.level(name).map_or(0, |l| i64::from(l.0))
}

fn agent_entity(
    agent: &warden_core::config::Agent,
    classes: &DataClasses,
) -> Result<Entity, String> {
    let attrs = HashMap::from([
        (
            "owner".to_owned(),
            RestrictedExpression::new_string(agent.owner.clone()),
        ),
        (
            "purpose".to_owned(),
            RestrictedExpression::new_string(agent.purpose.clone()),
        ),
        (
            "mode".to_owned(),
            RestrictedExpression::new_string(agent.mode.as_str().to_owned()),
        ),
        (
            "clearance".to_owned(),
            RestrictedExpression::new_long(class_rank(classes, &agent.clearance)),
        ),
        (
            "clearance_name".to_owned(),
            RestrictedExpression::new_string(agent.clearance.clone()),
        ),
        (
            "delegation".to_owned(),
            RestrictedExpression::new_bool(agent.delegation),
        ),
    ]);
    Entity::new(uid(Kind::Agent, &agent.id), attrs, role_uids(&agent.roles))
        .map_err(|e| format!("agent `{}`: {e}", agent.id))
}

/// An upstream's vendor and the rank of its clearance. An upstream the catalog names but the
/// config does not has no vendor and is cleared for nothing.
fn vendor_of(config: &Config, upstream: &str) -> (String, i64) {
    let vendor = config
        .upstream(upstream)
        .map(|u| u.vendor.clone())
        .unwrap_or_default();
    let clearance = config
        .vendor(&vendor)
        .map_or(0, |v| class_rank(&config.classes, &v.cleared));
    (vendor, clearance)
}

/// An upstream the catalog names but the config does not is untrusted and cleared for nothing.
fn upstream_entity(config: &Config, name: &str) -> Result<Entity, String> {
    let configured = config.upstream(name);
    let (vendor, clearance) = vendor_of(config, name);
    let attrs = HashMap::from([
        (
            "vendor".to_owned(),
            RestrictedExpression::new_string(vendor),
        ),
        (
            "trusted".to_owned(),
            RestrictedExpression::new_bool(configured.is_some_and(|u| u.trusted)),
        ),
        (
            "vendor_clearance".to_owned(),
            RestrictedExpression::new_long(clearance),
        ),
    ]);
    Entity::new(uid(Kind::Upstream, name), attrs, HashSet::new())
        .map_err(|e| format!("upstream `{name}`: {e}"))
}

fn tool_entity(config: &Config, tool: &ToolInfo) -> Result<Entity, String> {
    let (vendor, vendor_clearance) = vendor_of(config, tool.name.upstream());
    let attrs = HashMap::from([
        (
            "vendor".to_owned(),
            RestrictedExpression::new_string(vendor),
        ),
        (
            "vendor_clearance".to_owned(),
            RestrictedExpression::new_long(vendor_clearance),
        ),
        (
            "name".to_owned(),
            RestrictedExpression::new_string(tool.name.to_string()),
        ),
        (
            "upstream".to_owned(),
            RestrictedExpression::new_string(tool.name.upstream().to_owned()),
        ),
        (
            "risk".to_owned(),
            RestrictedExpression::new_string(tool.risk.as_str().to_owned()),
        ),
        (
            "risk_level".to_owned(),
            RestrictedExpression::new_long(risk_level(tool.risk)),
        ),
        (
            "reversible".to_owned(),
            RestrictedExpression::new_bool(tool.reversible),
        ),
    ]);
    let parents = HashSet::from([uid(Kind::Upstream, tool.name.upstream())]);
    Entity::new(uid(Kind::Tool, tool.name.as_str()), attrs, parents)
        .map_err(|e| format!("tool `{}`: {e}", tool.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_namespaced_type() {
        for kind in [
            Kind::Agent,
            Kind::User,
            Kind::Role,
            Kind::Upstream,
            Kind::Tool,
            Kind::Action,
        ] {
            assert_eq!(
                uid(kind, "x").to_string(),
                format!("Warden::{}::\"x\"", kind.type_name())
            );
        }
    }
}
