//! Account, LEAN versions, projects, collaborators and project nodes.

use serde_json::{Value, json};

use super::{Answer, ApiError, Ctx, Params, ok, source};
use crate::state::{AccountState, Collaborator, FileEntry, NodeKind, Project, uid_of};
use crate::util::{fmt_datetime, hex_id, seed, unix_from_date};

pub(crate) const LATEST_LEAN: i64 = 17_120;

pub(crate) fn lean_versions() -> Vec<Value> {
    [(17_080, 2025, 6), (17_100, 2025, 7), (LATEST_LEAN, 2025, 8)]
        .iter()
        .map(|&(id, y, m)| {
            let idv = id.to_string();
            json!({
                "id": id,
                "created": fmt_datetime(unix_from_date(y, m, 1) + 14 * 3600),
                "description": format!("LEAN engine release {id}"),
                "leanHash": hex_id(&["lean", &idv], 40),
                "leanCloudHash": hex_id(&["lean-cloud", &idv], 40),
                "name": format!("v2.5.{id}"),
                "ref": format!("refs/tags/{id}"),
                "public": true,
            })
        })
        .collect()
}

pub(crate) fn read_account(ctx: &mut Ctx<'_>, _body: &Value) -> Answer {
    let acct = &ctx.acct;
    let s = seed(&["card", &acct.account.user_id]);
    ok(json!({
        "organizationId": acct.account.organization_id,
        "creditBalance": (acct.credit_balance * 100.0).round() / 100.0,
        "card": {
            "brand": "Visa",
            "expiration": format!("{:02}/{}", s % 12 + 1, 30 + s % 5),
            "last4": format!("{:04}", s % 10_000),
        },
    }))
}

pub(crate) fn read_lean_versions(_ctx: &mut Ctx<'_>, _body: &Value) -> Answer {
    ok(json!({ "versions": lean_versions() }))
}

pub(crate) fn collaborator_json(c: &Collaborator) -> Value {
    json!({
        "uid": uid_of(&c.user_id),
        "liveControl": c.live_control,
        "permission": if c.write { "write" } else { "read" },
        "publicId": c.user_id,
        "profileImage": "",
        "email": format!("{}@example.com", c.user_id),
        "name": if c.owner { format!("Owner {}", c.user_id) } else { format!("Collaborator {}", c.user_id) },
        "bio": "",
        "owner": c.owner,
    })
}

pub(crate) fn project_json(acct: &AccountState, p: &Project) -> Value {
    let running = acct.live.iter().any(|l| l.project_id == p.id && l.status == "Running");
    let last_deploy = acct.live.iter().filter(|l| l.project_id == p.id).map(|l| l.launched).max();
    let mut v = json!({
        "projectId": p.id,
        "organizationId": p.organization_id,
        "name": p.name,
        "modified": fmt_datetime(p.modified),
        "created": fmt_datetime(p.created),
        "ownerId": acct.owner_uid(),
        "language": p.language,
        "collaborators": p.collaborators.iter().map(collaborator_json).collect::<Vec<_>>(),
        "leanVersionId": p.lean_version_id,
        "leanPinnedToMaster": true,
        "owner": true,
        "description": p.description,
        "channelId": hex_id(&["channel", &p.id.to_string()], 32),
        "parameters": [],
        "libraries": [],
        "paperEquity": 100000.0,
        "encrypted": false,
        "codeRunning": running,
        "leanEnvironment": 1,
    });
    if let Some(t) = last_deploy {
        v["lastLiveDeployment"] = json!(fmt_datetime(t));
    }
    v
}

pub(crate) fn create(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let name = p.str("name");
    let language = p.one_of("language", &["C#", "Py"]);
    let org = p.opt_str("organizationId");
    p.finish()?;
    let org = org.unwrap_or_else(|| ctx.acct.account.organization_id.clone());
    ctx.check_org(&org)?;

    let id = ctx.acct.next_project_id;
    ctx.acct.next_project_id += 1;
    let (file_name, content) = source::default_file(&language, &name);
    let file_id = ctx.acct.next_file_id;
    let notebook_id = file_id + 1;
    let notebook = source::research_notebook(&language);
    ctx.acct.next_file_id += 2;
    let owner = ctx.acct.account.user_id.clone();
    let project = Project {
        id,
        name,
        description: String::new(),
        language,
        organization_id: org,
        created: ctx.now,
        modified: ctx.now,
        // QuantConnect makes the main algorithm and a research notebook with every project.
        files: vec![
            FileEntry { id: file_id, name: file_name, content, modified: ctx.now },
            FileEntry { id: notebook_id, name: "research.ipynb".into(), content: notebook, modified: ctx.now },
        ],
        collaborators: vec![Collaborator { user_id: owner, live_control: true, write: true, owner: true }],
        active_nodes: Vec::new(),
        auto_select_node: true,
        compiles: Vec::new(),
        backtests: Vec::new(),
        lean_version_id: LATEST_LEAN,
    };
    let v = project_json(ctx.acct, &project);
    ctx.acct.projects.insert(id, project);
    ok(json!({ "projects": [v], "versions": lean_versions() }))
}

pub(crate) fn read(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.opt_int("projectId");
    let start = p.opt_int("start").unwrap_or(0);
    let end = p.opt_int("end").unwrap_or(100);
    p.finish()?;
    let projects: Vec<Value> = match id {
        Some(id) => vec![project_json(ctx.acct, ctx.project(id)?)],
        None => {
            if start < 0 || end < start {
                return Err(ApiError::new(format!(
                    "start and end must satisfy 0 <= start <= end (got start {start}, end {end})."
                )));
            }
            ctx.acct
                .projects
                .values()
                .skip(start as usize)
                .take((end - start) as usize)
                .map(|p| project_json(ctx.acct, p))
                .collect()
        }
    };
    ok(json!({ "projects": projects, "versions": lean_versions() }))
}

pub(crate) fn update(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let name = p.opt_str("name");
    let description = p.opt_str("description");
    p.finish()?;
    if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::new("name cannot be empty."));
    }
    if let Some(taken) = name.as_deref().filter(|n| ctx.acct.projects.values().any(|p| p.id != id && p.name == *n)) {
        return Err(ApiError::new(format!("A project named {taken} already exists; choose another name.")));
    }
    let now = ctx.now;
    let project = ctx.project_mut(id)?;
    if let Some(n) = name {
        project.name = n;
    }
    if let Some(d) = description {
        project.description = d;
    }
    project.modified = now;
    ok(json!({}))
}

pub(crate) fn delete(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    p.finish()?;
    ctx.project(id)?;
    if ctx.acct.live.iter().any(|l| l.project_id == id && l.status == "Running") {
        return Err(ApiError::new(format!(
            "Project {id} has a running live algorithm; stop it before deleting the project."
        )));
    }
    ctx.acct.projects.remove(&id);
    ctx.acct.optimizations.retain(|o| o.project_id != id);
    ok(json!({}))
}

fn collaborators_of(project: &Project) -> Vec<Value> {
    project.collaborators.iter().map(collaborator_json).collect()
}

pub(crate) fn collaborator_create(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let user = p.str("collaboratorUserId");
    let live_control = p.bool("collaborationLiveControl");
    let write = p.bool("collaborationWrite");
    p.finish()?;
    let project = ctx.project_mut(id)?;
    if project.collaborators.iter().any(|c| c.user_id == user) {
        return Err(ApiError::new(format!("User {user} is already a collaborator on project {id}.")));
    }
    project.collaborators.push(Collaborator { user_id: user, live_control, write, owner: false });
    ok(json!({ "collaborators": collaborators_of(project) }))
}

pub(crate) fn collaborator_read(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    p.finish()?;
    let project = ctx.project(id)?;
    ok(json!({
        "collaborators": collaborators_of(project),
        "userLiveControl": true,
        "userPermissions": "write",
    }))
}

pub(crate) fn collaborator_update(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let user = p.str("collaboratorUserId");
    let live_control = p.bool("liveControl");
    let write = p.bool("write");
    p.finish()?;
    let project = ctx.project_mut(id)?;
    let Some(c) = project.collaborators.iter_mut().find(|c| c.user_id == user && !c.owner) else {
        return Err(ApiError::new(format!("User {user} is not a collaborator on project {id}.")));
    };
    c.live_control = live_control;
    c.write = write;
    ok(json!({ "collaborators": collaborators_of(project) }))
}

pub(crate) fn collaborator_delete(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let user = p.str("collaboratorId");
    p.finish()?;
    let project = ctx.project_mut(id)?;
    let before = project.collaborators.len();
    project.collaborators.retain(|c| c.owner || c.user_id != user);
    if project.collaborators.len() == before {
        return Err(ApiError::new(format!("User {user} is not a collaborator on project {id}.")));
    }
    ok(json!({ "collaborators": collaborators_of(project) }))
}

pub(crate) fn lock_acquire(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    p.str("codeSourceId");
    p.finish()?;
    ctx.project(id)?;
    ok(json!({}))
}

fn nodes_json(ctx: &Ctx<'_>, project: &Project) -> Value {
    let acct = &ctx.acct;
    let node = |kind: NodeKind| -> Vec<Value> {
        acct.nodes
            .iter()
            .filter(|n| n.kind == kind)
            .map(|n| {
                let user = acct.live.iter().find(|l| l.node_id == n.id && l.status == "Running");
                let user_project = user.and_then(|l| acct.projects.get(&l.project_id));
                json!({
                    "speed": n.speed,
                    "price": {"monthly": n.monthly, "yearly": n.yearly},
                    "cpu": n.cpu,
                    "ram": n.ram,
                    "name": n.name,
                    "sku": n.sku,
                    "description": format!("{} CPU, {} GB RAM", n.cpu, n.ram),
                    "usedBy": user_project.map(|_| acct.account.user_id.clone()).unwrap_or_default(),
                    "userProfile": "",
                    "projectName": user_project.map(|p| p.name.clone()).unwrap_or_default(),
                    "projectId": user.map(|l| l.project_id).unwrap_or(0),
                    "busy": user.is_some(),
                    "id": n.id,
                    "assets": 0,
                    "host": "sim-cloud",
                    "active": project.active_nodes.contains(&n.id),
                    "hasGpu": n.has_gpu,
                })
            })
            .collect()
    };
    json!({
        "nodes": {
            "backtest": node(NodeKind::Backtest),
            "live": node(NodeKind::Live),
            "research": node(NodeKind::Research),
        },
        "autoSelectNode": project.auto_select_node,
    })
}

pub(crate) fn nodes_read(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    p.finish()?;
    let project = ctx.project(id)?;
    ok(nodes_json(ctx, project))
}

pub(crate) fn nodes_update(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let nodes = p.opt_str_array("nodes").unwrap_or_default();
    p.finish()?;
    ctx.project(id)?;
    let unknown: Vec<String> = nodes
        .iter()
        .filter(|n| !ctx.acct.nodes.iter().any(|k| &k.id == *n))
        .map(|n| format!("Node {n} not found."))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError(unknown));
    }
    let project = ctx.project_mut(id)?;
    project.auto_select_node = nodes.is_empty();
    project.active_nodes = nodes;
    let project = ctx.project(id)?;
    ok(nodes_json(ctx, project))
}
