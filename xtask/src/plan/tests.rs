//! Unit tests of the pure diff engine (`plan::diff`). Rendering has its own tests in
//! `render.rs`.

use std::collections::BTreeMap;

use serde_json::json;

use super::{diff, Action, Plan, PropertyChange};
use crate::resources::{Address, Desired, Kind, Observed, Props};

fn props(value: serde_json::Value) -> Props {
    match value {
        serde_json::Value::Object(map) => map.into_iter().collect(),
        other => panic!("test props must be an object, got {other}"),
    }
}

fn desired(kind: Kind, name: &str, physical: &str, p: serde_json::Value) -> Desired {
    Desired {
        address: Address::new(kind, name),
        physical: physical.into(),
        props: props(p),
        depends_on: Vec::new(),
        retain: false,
    }
}

fn observed(physical: &str, p: serde_json::Value) -> Observed {
    Observed {
        physical: physical.into(),
        props: props(p),
    }
}

fn plan(
    want: &[Desired],
    have: &[(Address, Option<Observed>)],
    orphans: &[(Address, Observed)],
) -> Plan {
    let have: BTreeMap<_, _> = have.iter().cloned().collect();
    diff("exif-pipeline", "dev", want, &have, orphans)
}

fn bucket() -> Desired {
    desired(
        Kind::Bucket,
        "source",
        "src-bucket",
        json!({"region": "eu-west-1", "versioning": "Enabled"}),
    )
}

#[test]
fn nothing_declared_nothing_observed_is_an_empty_plan() {
    let p = plan(&[], &[], &[]);
    assert!(p.is_empty());
    assert_eq!(p.unchanged, 0);
    assert_eq!((p.stack.as_str(), p.env.as_str()), ("exif-pipeline", "dev"));
}

#[test]
fn missing_resource_is_created_with_every_property() {
    let want = bucket();
    // Observed as absent and not observed at all mean the same: it does not exist.
    for have in [vec![(want.address.clone(), None)], vec![]] {
        let p = plan(std::slice::from_ref(&want), &have, &[]);
        assert_eq!(p.changes.len(), 1);
        let c = &p.changes[0];
        assert_eq!(c.action, Action::Create);
        assert_eq!(c.physical, "src-bucket");
        assert_eq!(
            c.properties,
            vec![
                PropertyChange {
                    name: "region".into(),
                    old: None,
                    new: Some(json!("eu-west-1")),
                    document: false,
                    sensitive: false,
                    // A new resource replaces nothing.
                    forces_replacement: false,
                },
                PropertyChange {
                    name: "versioning".into(),
                    old: None,
                    new: Some(json!("Enabled")),
                    document: false,
                    sensitive: false,
                    forces_replacement: false,
                },
            ]
        );
    }
}

#[test]
fn equal_resource_is_counted_unchanged() {
    let want = bucket();
    let have = observed(
        "src-bucket",
        json!({"region": "eu-west-1", "versioning": "Enabled"}),
    );
    let p = plan(
        std::slice::from_ref(&want),
        &[(want.address.clone(), Some(have))],
        &[],
    );
    assert!(p.is_empty());
    assert_eq!(p.unchanged, 1);
}

#[test]
fn plain_property_drift_is_an_update_listing_only_what_differs() {
    let want = bucket();
    let have = observed(
        "src-bucket",
        json!({"region": "eu-west-1", "versioning": "Suspended"}),
    );
    let p = plan(
        std::slice::from_ref(&want),
        &[(want.address.clone(), Some(have))],
        &[],
    );
    assert_eq!(p.unchanged, 0);
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Update);
    assert_eq!(
        c.properties,
        vec![PropertyChange {
            name: "versioning".into(),
            old: Some(json!("Suspended")),
            new: Some(json!("Enabled")),
            document: false,
            sensitive: false,
            forces_replacement: false,
        }]
    );
}

#[test]
fn observed_properties_the_stack_does_not_declare_are_ignored() {
    let want = bucket();
    let have = observed(
        "src-bucket",
        json!({"region": "eu-west-1", "versioning": "Enabled", "acl": "private"}),
    );
    let p = plan(
        std::slice::from_ref(&want),
        &[(want.address.clone(), Some(have))],
        &[],
    );
    assert!(p.is_empty());
    assert_eq!(p.unchanged, 1);
}

#[test]
fn declared_property_missing_from_the_real_resource_is_added() {
    let want = bucket();
    let have = observed("src-bucket", json!({"region": "eu-west-1"}));
    let p = plan(
        std::slice::from_ref(&want),
        &[(want.address.clone(), Some(have))],
        &[],
    );
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.properties.len(), 1);
    assert_eq!(c.properties[0].name, "versioning");
    assert_eq!(c.properties[0].old, None);
    assert_eq!(c.properties[0].new, Some(json!("Enabled")));
}

#[test]
fn replacement_property_change_is_a_replace() {
    let want = bucket();
    let have = observed(
        "src-bucket",
        json!({"region": "us-east-1", "versioning": "Suspended"}),
    );
    let p = plan(
        std::slice::from_ref(&want),
        &[(want.address.clone(), Some(have))],
        &[],
    );
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Replace);
    let flags: Vec<_> = c
        .properties
        .iter()
        .map(|p| (p.name.as_str(), p.forces_replacement))
        .collect();
    // Every differing property is listed; only the region forces the replacement.
    assert_eq!(flags, vec![("region", true), ("versioning", false)]);
}

#[test]
fn replacement_property_unknown_on_the_real_side_is_an_update() {
    // A reader that could not tell the region does not make the bucket be re-created.
    let want = bucket();
    let have = observed("src-bucket", json!({"versioning": "Enabled"}));
    let p = plan(
        std::slice::from_ref(&want),
        &[(want.address.clone(), Some(have))],
        &[],
    );
    assert_eq!(p.changes[0].action, Action::Update);
    assert!(!p.changes[0].properties[0].forces_replacement);
}

#[test]
fn renamed_resource_is_replaced_and_the_name_comes_first() {
    let want = bucket();
    let have = observed(
        "old-bucket",
        json!({"region": "eu-west-1", "versioning": "Suspended"}),
    );
    let p = plan(
        std::slice::from_ref(&want),
        &[(want.address.clone(), Some(have))],
        &[],
    );
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Replace);
    assert_eq!(
        c.physical, "src-bucket",
        "a change names the desired resource"
    );
    assert_eq!(
        c.properties[0],
        PropertyChange {
            name: "name".into(),
            old: Some(json!("old-bucket")),
            new: Some(json!("src-bucket")),
            document: false,
            sensitive: false,
            forces_replacement: true,
        }
    );
    assert_eq!(c.properties[1].name, "versioning");
}

#[test]
fn rename_alone_is_a_replace() {
    let want = bucket();
    let have = observed(
        "old-bucket",
        json!({"region": "eu-west-1", "versioning": "Enabled"}),
    );
    let p = plan(
        std::slice::from_ref(&want),
        &[(want.address.clone(), Some(have))],
        &[],
    );
    assert_eq!(p.changes[0].action, Action::Replace);
    assert_eq!(p.changes[0].properties.len(), 1);
    assert_eq!(p.unchanged, 0);
}

#[test]
fn orphans_are_deleted_with_their_properties() {
    let orphan = (
        Address::new(Kind::Bucket, "scratch"),
        observed(
            "scratch-bucket",
            json!({"region": "eu-west-1", "versioning": "Enabled"}),
        ),
    );
    let p = plan(&[], &[], std::slice::from_ref(&orphan));
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Delete);
    assert_eq!(c.address, orphan.0);
    assert_eq!(c.physical, "scratch-bucket");
    let props: Vec<_> = c
        .properties
        .iter()
        .map(|p| (p.name.as_str(), p.old.clone(), p.new.clone()))
        .collect();
    assert_eq!(
        props,
        vec![
            ("region", Some(json!("eu-west-1")), None),
            ("versioning", Some(json!("Enabled")), None),
        ]
    );
    // Deleting a resource replaces nothing, whatever kind of property it had.
    assert!(c.properties.iter().all(|p| !p.forces_replacement));
}

#[test]
fn orphan_that_is_still_declared_is_not_deleted() {
    let want = bucket();
    let have = observed(
        "src-bucket",
        json!({"region": "eu-west-1", "versioning": "Enabled"}),
    );
    let p = plan(
        std::slice::from_ref(&want),
        &[(want.address.clone(), Some(have.clone()))],
        &[(want.address.clone(), have)],
    );
    assert!(p.is_empty());
    assert_eq!(p.unchanged, 1);
}

#[test]
fn property_kinds_are_flagged() {
    let policy = desired(
        Kind::Policy,
        "reader",
        "reader",
        json!({"document": {"Statement": [{"Action": ["s3:GetObject"]}]}, "description": "r"}),
    );
    let param = desired(
        Kind::Parameter,
        "token",
        "/x/token",
        json!({"type": "SecureString", "value_sha256": "aa"}),
    );
    let have = [
        (
            policy.address.clone(),
            Some(observed(
                "reader",
                json!({"document": {"Statement": [{"Action": ["s3:PutObject"]}]}, "description": "r"}),
            )),
        ),
        (
            param.address.clone(),
            Some(observed(
                "/x/token",
                json!({"type": "SecureString", "value_sha256": "bb"}),
            )),
        ),
    ];
    let p = plan(&[policy, param], &have, &[]);
    let flags: Vec<_> = p
        .changes
        .iter()
        .flat_map(|c| &c.properties)
        .map(|p| {
            (
                p.name.as_str(),
                p.document,
                p.sensitive,
                p.forces_replacement,
            )
        })
        .collect();
    assert_eq!(
        flags,
        vec![
            ("value_sha256", false, true, false),
            ("document", true, false, false),
        ]
    );
    assert!(p.changes.iter().all(|c| c.action == Action::Update));
}

#[test]
fn changes_are_sorted_by_kind_order_then_name() {
    // Declared out of order; kinds sort in dependency order, not alphabetically.
    let want = [
        desired(Kind::Function, "strip", "f", json!({})),
        desired(Kind::Bucket, "source", "s", json!({})),
        desired(Kind::Parameter, "b", "/b", json!({})),
        desired(Kind::Bucket, "destination", "d", json!({})),
        desired(Kind::Parameter, "a", "/a", json!({})),
    ];
    let orphans = [(
        Address::new(Kind::Policy, "old"),
        observed("old", json!({})),
    )];
    let p = plan(&want, &[], &orphans);
    let order: Vec<_> = p.changes.iter().map(|c| c.address.to_string()).collect();
    assert_eq!(
        order,
        [
            "bucket.destination",
            "bucket.source",
            "parameter.a",
            "parameter.b",
            "policy.old",
            "function.strip",
        ]
    );
}

#[test]
fn counts_per_action() {
    let a = desired(Kind::Bucket, "a", "a", json!({"versioning": "Enabled"}));
    let b = desired(Kind::Bucket, "b", "b", json!({"versioning": "Enabled"}));
    let c = desired(Kind::Bucket, "c", "c", json!({"versioning": "Enabled"}));
    let d = desired(Kind::Bucket, "d", "d", json!({"versioning": "Enabled"}));
    let have = [
        (
            b.address.clone(),
            Some(observed("b", json!({"versioning": "Suspended"}))),
        ),
        (
            c.address.clone(),
            Some(observed("c-old", json!({"versioning": "Enabled"}))),
        ),
        (
            d.address.clone(),
            Some(observed("d", json!({"versioning": "Enabled"}))),
        ),
    ];
    let orphans = [(Address::new(Kind::Bucket, "e"), observed("e", json!({})))];
    let p = plan(&[a, b, c, d], &have, &orphans);
    assert_eq!(p.count(Action::Create), 1);
    assert_eq!(p.count(Action::Update), 1);
    assert_eq!(p.count(Action::Replace), 1);
    assert_eq!(p.count(Action::Delete), 1);
    assert_eq!(p.unchanged, 1);
    assert!(!p.is_empty());
}

/// Issue 13 row 9, as the plan shows it: a tag an auto-tagger put on a user is no drift; a
/// key the stack set (its record says so) and no longer declares shows as a change that
/// drops it. The snapshot layer hands the planner the part of what it read that the stack
/// manages (`resources::managed`, from the record's settings).
#[test]
fn foreign_tags_are_no_drift_and_a_dropped_key_shows_as_removed() {
    use crate::resources::{managed, tags};
    let stack_tags = json!({"env": "dev", "managed-by": "stripstack", "region": "eu-west-2", "stack": "exif-pipeline"});
    let want = desired(
        Kind::User,
        "user-a",
        "exif-pipeline-dev-user-a",
        json!({"tags": stack_tags}),
    );
    let mut seen = stack_tags.clone();
    seen["CostCenter"] = json!("42");
    let raw = observed("exif-pipeline-dev-user-a", json!({ "tags": seen }));
    let declared: Vec<String> = ["env", "managed-by", "region", "stack"]
        .map(str::to_owned)
        .to_vec();
    let have = managed(&want, raw, &tags::settings(&declared));
    let p = plan(
        std::slice::from_ref(&want),
        &[(want.address.clone(), Some(have))],
        &[],
    );
    assert!(p.is_empty(), "a foreign tag is not drift: {p:?}");

    // The stack used to declare `team` too, and no longer does.
    let mut seen = stack_tags.clone();
    seen["CostCenter"] = json!("42");
    seen["team"] = json!("photos");
    let raw = observed("exif-pipeline-dev-user-a", json!({ "tags": seen }));
    let mut recorded = declared;
    recorded.push("team".to_owned());
    let have = managed(&want, raw, &tags::settings(&recorded));
    let p = plan(
        std::slice::from_ref(&want),
        &[(want.address.clone(), Some(have))],
        &[],
    );
    assert_eq!(p.count(Action::Update), 1);
    insta::assert_snapshot!(super::render::text(&p, false));
}
