//! Sensu's token substitution (SG `token`): `{{ .labels.url }}` in a check's strings is
//! replaced by that value of the entity the check runs for, before it runs.
//!
//! Sensu uses Go's `text/template`; Ward reads the part of it Sensu documents:
//! - a field path over the entity as Sensu synthesises it (`metadata` hoisted: `.name`,
//!   `.namespace`, `.labels.x`, `.annotations.x`, `.system.hostname`, …);
//! - `default`: `{{ .labels.port | default "80" }}` or `{{ default "80" .labels.port }}`,
//!   used when the value is missing (an empty string stays empty);
//! - `assetPath "name"`: the text `NAME_PATH` (meant after a `$`: `${{ assetPath "a" }}`);
//! - string (`"…"`, `` `…` ``), number and `true`/`false` literals, `{{-`/`-}}` trimming,
//!   `{{/* comments */}}`.
//!
//! A token whose value is missing (and has no default) is an error, as Sensu reports it
//! (`unmatched token`), naming the token and the path; so is anything else Go's templates
//! have that Sensu does not document (other functions, `if`, `range`, variables).
//!
//! Each string is substituted on its own (Sensu templates the whole check's JSON text, so a
//! value with a quote in it could break it; here it cannot).

use serde_json::Value;

/// Why a string's tokens could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("unmatched token: {token}: the entity has no {path} (set it, or give a default: {{{{ {path_dot} | default \"…\" }}}})")]
    Unmatched {
        token: String,
        path: String,
        path_dot: String,
    },
    #[error("{token}: {why}")]
    Invalid { token: String, why: String },
}

/// `<NAME>_PATH`: the name uppercased, each run of other characters than letters and
/// digits made one `_` (Sensu's `asset.Env`; `assetPath` gives it).
pub fn asset_path_variable(name: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c.to_ascii_uppercase());
        } else {
            gap = true;
        }
    }
    if gap {
        out.push('_');
    }
    out.push_str("_PATH");
    out
}

/// The data tokens read: the entity (flat, `{metadata, …}`) with `metadata` hoisted.
pub fn entity_data(entity: &Value) -> Value {
    let mut v = entity.clone();
    if let Some(o) = v.as_object_mut() {
        if let Some(Value::Object(md)) = o.remove("metadata") {
            for (k, x) in md {
                o.entry(k).or_insert(x);
            }
        }
    }
    v
}

/// Substitutes the tokens of every string in `v` (recursively), except the members named
/// in `keep` (an asset's `sha512`, say).
pub fn substitute_all(v: &mut Value, data: &Value, keep: &[&str]) -> Result<(), TokenError> {
    match v {
        Value::String(s) if s.contains("{{") => *s = substitute(s, data)?,
        Value::Array(a) => {
            for x in a {
                substitute_all(x, data, keep)?;
            }
        }
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if !keep.contains(&k.as_str()) {
                    substitute_all(x, data, keep)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// `text` with its tokens replaced by values of `data`.
pub fn substitute(text: &str, data: &Value) -> Result<String, TokenError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("{{") {
        let mut before = &rest[..at];
        let after = &rest[at + 2..];
        let Some(end) = after.find("}}") else {
            return Err(TokenError::Invalid {
                token: one_line(&rest[at..]),
                why: "the token is not closed with }}".into(),
            });
        };
        let token = &rest[at..at + 2 + end + 2];
        let mut inner = &after[..end];
        let mut rest_after = &after[end + 2..];
        if let Some(i) = inner.strip_prefix('-') {
            inner = i;
            before = before.trim_end();
        }
        if let Some(i) = inner.strip_suffix('-') {
            inner = i;
            rest_after = rest_after.trim_start();
        }
        out.push_str(before);
        let inner = inner.trim();
        if !(inner.starts_with("/*") && inner.ends_with("*/")) {
            let value = eval(inner, data).map_err(|e| e.at(token))?;
            render(&value, &mut out);
        }
        rest = rest_after;
    }
    out.push_str(rest);
    Ok(out)
}

fn one_line(s: &str) -> String {
    s.chars().take(60).filter(|c| !c.is_control()).collect()
}

/// An error before it knows its token.
enum Fail {
    Missing(String),
    Bad(String),
}

impl Fail {
    fn at(self, token: &str) -> TokenError {
        let token = one_line(token);
        match self {
            Fail::Missing(path) => TokenError::Unmatched {
                token,
                path_dot: format!(".{path}"),
                path,
            },
            Fail::Bad(why) => TokenError::Invalid { token, why },
        }
    }
}

/// An operand or a command's value; `Missing` carries the path that was not there.
enum Val {
    Some(Value),
    Missing(String),
}

fn eval(pipeline: &str, data: &Value) -> Result<Value, Fail> {
    let mut carried: Option<Val> = None;
    for command in split_outside_quotes(pipeline, |c| c == '|')? {
        let words: Vec<&str> = split_outside_quotes(command, char::is_whitespace)?
            .into_iter()
            .filter(|w| !w.is_empty())
            .collect();
        let Some(first) = words.first() else {
            return Err(Fail::Bad("an empty command".into()));
        };
        let mut args: Vec<Val> = words[1..]
            .iter()
            .map(|w| operand(w, data))
            .collect::<Result<_, _>>()?;
        if let Some(c) = carried.take() {
            args.push(c);
        }
        carried = Some(match *first {
            "default" => match args.len() {
                2 => {
                    let mut it = args.into_iter();
                    let (def, v) = (it.next(), it.next());
                    match (def, v) {
                        (_, Some(Val::Some(v))) if !v.is_null() => Val::Some(v),
                        (Some(Val::Some(d)), _) => Val::Some(d),
                        (Some(Val::Missing(p)), _) => Val::Missing(p),
                        _ => return Err(Fail::Bad("default: no value".into())),
                    }
                }
                n => {
                    return Err(Fail::Bad(format!(
                        "default takes 2 arguments (a default and a value), not {n}"
                    )))
                }
            },
            "assetPath" => match args.as_slice() {
                [Val::Some(Value::String(name))] => {
                    Val::Some(Value::String(asset_path_variable(name)))
                }
                _ => {
                    return Err(Fail::Bad(
                        "assetPath takes one string: the asset's name".into(),
                    ))
                }
            },
            w if words.len() == 1 && args.is_empty() => operand(w, data)?,
            w if w.starts_with('.') || w.starts_with('"') => {
                return Err(Fail::Bad(format!("{w} is not a function")));
            }
            w => {
                return Err(Fail::Bad(format!(
                    "function {w:?} is not one Sensu's tokens have (default, assetPath)"
                )))
            }
        });
    }
    match carried {
        Some(Val::Some(v)) if !v.is_null() => Ok(v),
        Some(Val::Some(_)) => Err(Fail::Missing("(a null value)".into())),
        Some(Val::Missing(p)) => Err(Fail::Missing(p)),
        None => Err(Fail::Bad("an empty token".into())),
    }
}

fn operand(word: &str, data: &Value) -> Result<Val, Fail> {
    if word == "." {
        return Ok(Val::Some(data.clone()));
    }
    if let Some(path) = word.strip_prefix('.') {
        let mut v = data;
        for part in path.split('.') {
            if part.is_empty() || !part.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(Fail::Bad(format!(
                    "{word:?} is not a field path such as .labels.region"
                )));
            }
            match v {
                Value::Object(o) => match o.get(part) {
                    Some(x) => v = x,
                    None => return Ok(Val::Missing(path.to_string())),
                },
                Value::Null => return Ok(Val::Missing(path.to_string())),
                other => {
                    return Err(Fail::Bad(format!(
                        "can't read {part:?} of {path}: it is {}",
                        kind(other)
                    )))
                }
            }
        }
        return Ok(if v.is_null() {
            Val::Missing(path.to_string())
        } else {
            Val::Some(v.clone())
        });
    }
    if word.starts_with('"') {
        return serde_json::from_str::<String>(word)
            .map(|s| Val::Some(Value::String(s)))
            .map_err(|_| Fail::Bad(format!("{word} is not a string literal")));
    }
    if let Some(raw) = word.strip_prefix('`').and_then(|w| w.strip_suffix('`')) {
        return Ok(Val::Some(Value::String(raw.to_string())));
    }
    match word {
        "true" => return Ok(Val::Some(Value::Bool(true))),
        "false" => return Ok(Val::Some(Value::Bool(false))),
        "nil" => return Ok(Val::Some(Value::Null)),
        _ => {}
    }
    if let Ok(n) = word.parse::<serde_json::Number>() {
        return Ok(Val::Some(Value::Number(n)));
    }
    Err(Fail::Bad(format!(
        "{word:?} is not a field (.labels.x), a literal or a function Sensu's tokens have"
    )))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Array(_) => "a list",
        _ => "not an object",
    }
}

/// `s` split where `is_sep` holds outside string literals (`"…"` with `\\` escapes, or
/// `` `…` ``). Outside them, what Sensu's tokens do not have (variables, parentheses,
/// assignments) is refused.
fn split_outside_quotes(s: &str, is_sep: impl Fn(char) -> bool) -> Result<Vec<&str>, Fail> {
    let mut parts = Vec::new();
    let (mut start, mut quote, mut escaped) = (0, None::<char>, false);
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '`' => quote = Some(c),
            None if matches!(c, '(' | ')' | '$' | ':' | '=') => {
                return Err(Fail::Bad(format!(
                    "{c:?}: variables, parentheses and actions such as if or range are not Sensu tokens"
                )));
            }
            None if is_sep(c) => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            None => {}
        }
    }
    if quote.is_some() {
        return Err(Fail::Bad("a string literal is not closed".into()));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

/// A value as Go's templates print it.
fn render(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                render(x, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            out.push_str("map[");
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                render(&o[k], out);
            }
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entity() -> Value {
        entity_data(&json!({
            "metadata": {"name": "web-1", "namespace": "default",
                         "labels": {"url": "https://web-1/health", "empty": ""},
                         "annotations": {"disk_warning": "85"}},
            "entity_class": "agent",
            "system": {"hostname": "web-1.example", "network": {"interfaces": [{"name": "lo"}]}},
            "subscriptions": ["linux", "web"]
        }))
    }

    #[test]
    fn sensus_documented_tokens() {
        let e = entity();
        for (text, want) in [
            ("check-http -u {{ .labels.url }}", "check-http -u https://web-1/health"),
            ("{{.name}} in {{ .namespace }}", "web-1 in default"),
            ("check-disk -w {{ .annotations.disk_warning | default \"80\" }} -c {{.annotations.disk_critical | default \"90\"}}", "check-disk -w 85 -c 90"),
            ("{{ default \"80\" .labels.port }}", "80"),
            ("[{{ .labels.empty | default \"x\" }}]", "[]"),
            ("{{ .system.hostname }}", "web-1.example"),
            ("{{ .subscriptions }}", "[linux web]"),
            ("${{ assetPath \"sensu/check-disk\" }}/bin/x", "$SENSU_CHECK_DISK_PATH/bin/x"),
            ("a {{- \" b \" -}} c", "a b c"),
            ("x{{/* a comment */}}y", "xy"),
            ("{{ .labels.port | default 8080 }}", "8080"),
            ("no tokens", "no tokens"),
        ] {
            assert_eq!(substitute(text, &e).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn missing_and_unsupported_tokens_say_which_and_why() {
        let e = entity();
        let err = substitute("check-http -u {{ .labels.missing }}", &e).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "unmatched token: {{ .labels.missing }}: the entity has no labels.missing"
            ),
            "{msg}"
        );
        for (text, why) in [
            ("{{ upper .name }}", "function \"upper\""),
            ("{{ if .name }}x{{ end }}", "function \"if\""),
            ("{{ $x := .name }}", "variables"),
            ("{{ .name.first }}", "it is a string"),
            ("{{ .labels.url", "not closed"),
            ("{{ \"open }}", "not closed"),
            ("{{ }}", "empty"),
        ] {
            let msg = substitute(text, &e).unwrap_err().to_string();
            assert!(msg.contains(why), "{text}: {msg}");
        }
    }

    #[test]
    fn every_string_of_a_check_is_substituted_but_kept_members() {
        let e = entity();
        let mut v = json!({"command": "ping {{ .name }}", "env_vars": ["URL={{ .labels.url }}"],
                           "interval": 10, "sha512": "{{ .name }}"});
        substitute_all(&mut v, &e, &["sha512"]).unwrap();
        assert_eq!(v["command"], "ping web-1");
        assert_eq!(v["env_vars"][0], "URL=https://web-1/health");
        assert_eq!(v["sha512"], "{{ .name }}");
    }
}
