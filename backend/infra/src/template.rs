//! The template: CloudFormation YAML (short-form tags and all) read into JSON, and the
//! variant a local stand-in can create.

use anyhow::{Context as _, Result, bail};
use serde_json::{Map, Value};

/// Reads CloudFormation YAML into the JSON form CloudFormation also accepts: `!Ref X` becomes
/// `{"Ref": "X"}`, `!GetAtt A.B` becomes `{"Fn::GetAtt": ["A", "B"]}`, any other `!Name v`
/// becomes `{"Fn::Name": v}`.
pub(crate) fn from_yaml(text: &str) -> Result<Value> {
    let yaml: serde_norway::Value =
        serde_norway::from_str(text).context("the template is not valid YAML")?;
    let json = to_json(yaml)?;
    if !json.get("Resources").is_some_and(Value::is_object) {
        bail!("the template has no Resources section");
    }
    Ok(json)
}

fn to_json(yaml: serde_norway::Value) -> Result<Value> {
    use serde_norway::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).context("a number")?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect::<Result<_>>()?),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                let key = match key {
                    Y::String(s) => s,
                    other => serde_norway::to_string(&other)?.trim().to_owned(),
                };
                out.insert(key, to_json(value)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let value = to_json(tagged.value)?;
            let (name, value) = match (tag, value) {
                ("Ref" | "Condition", value) => (tag.to_owned(), value),
                ("GetAtt", Value::String(path)) => {
                    let (resource, attribute) = path
                        .split_once('.')
                        .with_context(|| format!("!GetAtt {path}: expected Resource.Attribute"))?;
                    ("Fn::GetAtt".to_owned(), serde_json::json!([resource, attribute]))
                }
                (other, value) => (format!("Fn::{other}"), value),
            };
            Value::Object(Map::from_iter([(name, value)]))
        }
    })
}

/// The logical id and type of every resource.
pub(crate) fn resources(template: &Value) -> Vec<(String, String)> {
    template["Resources"]
        .as_object()
        .map(|resources| {
            resources
                .iter()
                .map(|(id, r)| (id.clone(), r["Type"].as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The template without the resources whose type starts with one of `skipped_types` (what a
/// local stand-in cannot create), references to them replaced by a placeholder string, and
/// outputs that need them dropped. Returns the template and what was left out.
pub(crate) fn without(template: &Value, skipped_types: &[&str]) -> (Value, Vec<(String, String)>) {
    let removed: Vec<(String, String)> = resources(template)
        .into_iter()
        .filter(|(_, kind)| skipped_types.iter().any(|prefix| kind.starts_with(prefix)))
        .collect();
    let ids: Vec<&str> = removed.iter().map(|(id, _)| id.as_str()).collect();
    let mut out = template.clone();
    if let Some(resources) = out["Resources"].as_object_mut() {
        for id in &ids {
            resources.remove(*id);
        }
    }
    if let Some(outputs) = out.get_mut("Outputs").and_then(Value::as_object_mut) {
        outputs.retain(|_, output| !mentions(output, &ids));
    }
    if let Some(resources) = out["Resources"].as_object_mut() {
        for resource in resources.values_mut() {
            if let Some(depends) = resource.get_mut("DependsOn") {
                match depends {
                    Value::Array(list) => list.retain(|d| !ids.contains(&d.as_str().unwrap_or(""))),
                    Value::String(one) if ids.contains(&one.as_str()) => *depends = Value::Null,
                    _ => {}
                }
            }
            if let Some(properties) = resource.get_mut("Properties") {
                replace_references(properties, &ids);
            }
        }
    }
    (out, removed)
}

fn placeholder(id: &str) -> String {
    format!("not-created-{id}")
}

/// Whether `value` refers to one of `ids` (Ref, GetAtt, or `${Id}` in a Sub).
fn mentions(value: &Value, ids: &[&str]) -> bool {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("Ref")
                && ids.contains(&target.as_str())
            {
                return true;
            }
            if let Some(Value::Array(path)) = map.get("Fn::GetAtt")
                && path.first().and_then(Value::as_str).is_some_and(|t| ids.contains(&t))
            {
                return true;
            }
            if let Some(sub) = map.get("Fn::Sub") {
                let text = match sub {
                    Value::String(s) => s.as_str(),
                    Value::Array(parts) => parts.first().and_then(Value::as_str).unwrap_or(""),
                    _ => "",
                };
                if ids.iter().any(|id| sub_mentions(text, id)) {
                    return true;
                }
            }
            map.values().any(|v| mentions(v, ids))
        }
        Value::Array(items) => items.iter().any(|v| mentions(v, ids)),
        _ => false,
    }
}

fn sub_mentions(text: &str, id: &str) -> bool {
    text.contains(&format!("${{{id}}}")) || text.contains(&format!("${{{id}."))
}

fn replace_references(value: &mut Value, ids: &[&str]) {
    let replacement = match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("Ref") {
                ids.contains(&target.as_str()).then(|| placeholder(target))
            } else if let Some(Value::Array(path)) = map.get("Fn::GetAtt") {
                path.first().and_then(Value::as_str).filter(|t| ids.contains(t)).map(placeholder)
            } else {
                None
            }
        }
        _ => None,
    };
    if let Some(replacement) = replacement {
        *value = Value::String(replacement);
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(Value::String(text)) = map.get_mut("Fn::Sub") {
                for id in ids {
                    *text = replace_in_sub(text, id);
                }
            }
            map.values_mut().for_each(|v| replace_references(v, ids));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_references(v, ids)),
        _ => {}
    }
}

/// Replaces `${Id}` and `${Id.Attr}` in a Sub string by the placeholder.
fn replace_in_sub(text: &str, id: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').map_or(after.len(), |e| e);
        let name = &after[..end];
        if name == id || name.strip_prefix(id).is_some_and(|r| r.starts_with('.')) {
            out.push_str(&placeholder(id));
        } else {
            out.push_str(&rest[start..(start + 2 + end + 1).min(rest.len())]);
        }
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
Parameters:
  Bucket: {Type: String}
Resources:
  Pool:
    Type: AWS::Cognito::UserPool
  Table:
    Type: AWS::DynamoDB::Table
    DependsOn: [Pool]
    Properties:
      TableName: !Sub "${AWS::StackName}-t"
      Tags:
        - {Key: pool, Value: !Ref Pool}
        - {Key: arn, Value: !GetAtt Pool.Arn}
        - {Key: sub, Value: !Sub "x-${Pool.Arn}-${Bucket}-${!literal}"}
        - {Key: joined, Value: !Join [",", [!Ref Bucket, !Ref "AWS::Region"]]}
Outputs:
  PoolId: {Value: !Ref Pool}
  TableName: {Value: !Ref Table}
"#;

    #[test]
    fn short_form_tags_become_cloudformations_json() {
        let t = from_yaml(YAML).expect("parses");
        let tags = &t["Resources"]["Table"]["Properties"]["Tags"];
        assert_eq!(tags[0]["Value"], serde_json::json!({"Ref": "Pool"}));
        assert_eq!(tags[1]["Value"], serde_json::json!({"Fn::GetAtt": ["Pool", "Arn"]}));
        assert_eq!(
            tags[3]["Value"],
            serde_json::json!({"Fn::Join": [",", [{"Ref": "Bucket"}, {"Ref": "AWS::Region"}]]})
        );
        assert!(from_yaml("Resources: [").is_err());
        assert!(from_yaml("Outputs: {}").is_err(), "no resources");
    }

    #[test]
    fn a_stand_in_template_leaves_out_a_type_and_every_reference_to_it() {
        let t = from_yaml(YAML).expect("parses");
        let (standin, removed) = without(&t, &["AWS::Cognito::"]);
        assert_eq!(removed, [("Pool".to_owned(), "AWS::Cognito::UserPool".to_owned())]);
        assert!(standin["Resources"].get("Pool").is_none());
        let table = &standin["Resources"]["Table"];
        assert_eq!(table["DependsOn"], serde_json::json!([]));
        let tags = &table["Properties"]["Tags"];
        assert_eq!(tags[0]["Value"], "not-created-Pool");
        assert_eq!(tags[1]["Value"], "not-created-Pool");
        assert_eq!(
            tags[2]["Value"],
            serde_json::json!({"Fn::Sub": "x-not-created-Pool-${Bucket}-${!literal}"})
        );
        assert!(standin["Outputs"].get("PoolId").is_none(), "an output of a left-out resource");
        assert!(standin["Outputs"].get("TableName").is_some());
        assert!(!mentions(&standin, &["Pool"]), "nothing refers to it any more");
    }
}
