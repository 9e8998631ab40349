//! The role map as TOML gives it: tables of raw values, read key by key, so that a key
//! that cannot be read (unknown, or a value of the wrong type) is one mistake and the
//! rest of the role map is still read and checked.

use std::fmt;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::{Mistake, Mistakes, line_and_column};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRoleMap {
    pub grace_period: Option<Spanned<String>>,
    pub shutdown: Option<RawShutdown>,
    pub match_timeout: Option<Spanned<String>>,
    pub kill_primaries_after: Option<Spanned<String>>,
    pub kill_on_second_signal: Option<bool>,
    pub stop_delay: Option<Spanned<String>>,
    pub output: Option<Spanned<String>>,
    pub log_format: Option<Spanned<String>>,
    pub control_socket: Option<Spanned<String>>,
    /// These three are read apart, each as a `[[process]]` key of its own name is: the
    /// types are the same, and the binary holds their readers once.
    #[serde(skip)]
    pub env_file: Option<Spanned<Vec<String>>>,
    #[serde(skip)]
    pub limits: Option<Spanned<std::collections::BTreeMap<String, RawSignal>>>,
    #[serde(skip)]
    pub umask: Option<Spanned<String>>,
    pub pod: Option<RawPod>,
    /// Read apart, one table at a time: see [`read_document`].
    #[serde(skip)]
    pub process: Vec<RawProcess>,
    /// `process` is there, but not as tables: a mistake already.
    #[serde(skip)]
    pub process_refused: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawProcess {
    pub name: Option<Spanned<String>>,
    pub role: Option<Spanned<RawRole>>,
    pub command: Option<Spanned<Vec<String>>>,
    #[serde(rename = "match")]
    pub matcher: Option<Spanned<RawMatch>>,
    pub stop_signal: Option<Spanned<RawSignal>>,
    pub grace_period: Option<Spanned<String>>,
    pub env: Option<Spanned<std::collections::BTreeMap<String, RawEnvValue>>>,
    pub env_file: Option<Spanned<Vec<String>>>,
    pub env_dir: Option<Spanned<String>>,
    pub limits: Option<Spanned<std::collections::BTreeMap<String, RawSignal>>>,
    pub umask: Option<Spanned<String>>,
    pub command_check: Option<bool>,
    pub workdir: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub stop: Option<Spanned<RawStop>>,
    pub ready: Option<Spanned<RawReady>>,
    /// Read with `ready`'s keys (one deserializer fewer in the binary); those that
    /// are not a liveness probe's are refused where it is read.
    pub live: Option<Spanned<RawReady>>,
    pub on_exit: Option<Spanned<RawOnExit>>,
    pub max_restarts: Option<Spanned<u32>>,
    pub restart_delay: Option<Spanned<String>>,
    pub max_restart_delay: Option<Spanned<String>>,
    pub exit_code: Option<Spanned<i64>>,
    /// A task's: how long it may run.
    pub timeout: Option<Spanned<String>>,
    /// The processes it starts after.
    pub after: Option<Spanned<Vec<String>>>,
    /// A task's: how many times it runs again after a failure.
    pub retries: Option<Spanned<u32>>,
    pub rewrite: Option<Spanned<std::collections::BTreeMap<String, RawSignal>>>,
    pub output: Option<Spanned<String>>,
    /// Where the table starts, for a mistake about the whole process.
    #[serde(skip)]
    pub at: std::ops::Range<usize>,
    /// Keys that could not be read: already a mistake, so nothing that follows from
    /// their absence is one too.
    #[serde(skip)]
    pub refused: Vec<String>,
    /// A `[[wait]]`: a gate, read with the keys a process has (one deserializer fewer
    /// in the binary), of which it takes only [`GATE_KEYS`].
    #[serde(skip)]
    pub gate: bool,
}

/// The keys of a `[[wait]]`.
pub const GATE_KEYS: [&str; 3] = ["name", "ready", "after"];

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawRole {
    Primary,
    Sidecar,
    Task,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum RawShutdown {
    Ordered,
    Parallel,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum RawOnExit {
    Restart,
    Ignore,
    Fail,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum RawOnTimeout {
    Fail,
    Start,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPod {
    pub name: Spanned<String>,
    pub graveyard: Option<Spanned<String>>,
    pub death_deps: Option<Vec<Spanned<String>>>,
    pub birth_deps: Option<Vec<Spanned<String>>>,
    pub birth_timeout: Option<Spanned<String>>,
    pub ignore_death_dep_code: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    pub comm: Option<Spanned<String>>,
    pub exe: Option<Spanned<String>>,
    pub argv0: Option<Spanned<String>>,
    pub uid: Option<Spanned<u32>>,
    pub cgroup: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStop {
    pub signal: Option<Spanned<RawSignal>>,
    pub http: Option<Spanned<String>>,
    pub exec: Option<Spanned<Vec<String>>>,
}

/// A `ready` table, and a `live` one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReady {
    /// `fd = N`: the process writes a newline to descriptor N when it is ready.
    pub fd: Option<Spanned<u32>>,
    /// `notify = "systemd"`: the process says `READY=1` on its `NOTIFY_SOCKET`.
    pub notify: Option<Spanned<String>>,
    pub tcp: Option<Spanned<String>>,
    pub http: Option<Spanned<String>>,
    pub exec: Option<Spanned<Vec<String>>>,
    pub file: Option<Spanned<String>>,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub attempt_timeout: Option<Spanned<String>>,
    pub on_timeout: Option<RawOnTimeout>,
    pub period: Option<Spanned<String>>,
    pub failure_threshold: Option<Spanned<u32>>,
    pub success_threshold: Option<Spanned<u32>>,
}

/// A word or a number as a role map writes it, the number as its digits: a signal
/// (`"SIGTERM"` or `15`), or a resource limit (`"unlimited"`, `"1024:4096"` or `1024`).
pub struct RawSignal(pub String);

impl<'de> Deserialize<'de> for RawSignal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RawSignal, D::Error> {
        struct Either;
        impl serde::de::Visitor<'_> for Either {
            type Value = RawSignal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a signal name such as \"SIGTERM\", or its number")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<RawSignal, E> {
                Ok(RawSignal(name.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<RawSignal, E> {
                Ok(RawSignal(number.to_string()))
            }
        }
        deserializer.deserialize_any(Either)
    }
}

/// A value of `env`: a string, or `{ file = "PATH" }` for the content of a file.
#[derive(Clone, PartialEq, Eq)]
pub enum RawEnvValue {
    Text(String),
    File(String),
}

impl<'de> Deserialize<'de> for RawEnvValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RawEnvValue, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = RawEnvValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, or { file = \"PATH\" } for the content of a file")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RawEnvValue, E> {
                Ok(RawEnvValue::Text(text.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawEnvValue, A::Error> {
                let mut file = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "file" if file.is_none() => file = Some(map.next_value::<String>()?),
                        _ => {
                            return Err(serde::de::Error::custom(format!(
                                "unknown key {key:?}: give {{ file = \"PATH\" }}"
                            )));
                        }
                    }
                }
                file.map(RawEnvValue::File).ok_or_else(|| serde::de::Error::custom("give { file = \"PATH\" }"))
            }
        }
        deserializer.deserialize_any(Either)
    }
}

/// Reads a role map's text. Text that is not TOML is the one mistake returned, since
/// it hides the rest; otherwise every key that cannot be read is noted in `mistakes`,
/// and what could be read is returned.
pub fn read_document(text: &str, mistakes: &mut Mistakes) -> Result<RawRoleMap, Mistake> {
    let document = DeTable::parse(text).map_err(|e| toml_mistake(text, &e))?;
    let span = document.span();
    let mut table = document.into_inner();
    let mut take = |name: &str| {
        let key = table.keys().find(|k| k.get_ref() == name).cloned();
        key.and_then(|key| table.remove(&key))
    };
    let processes = take("process");
    let waits = take("wait");
    let apart = [take("env_file"), take("limits"), take("umask")];
    let (mut raw, _) = read_table::<RawRoleMap>(Spanned::new(span, table), text, mistakes);
    let [env_file, limits, umask] = apart;
    raw.env_file = env_file.and_then(|value| read_value(value, text, mistakes));
    raw.limits = limits.and_then(|value| read_value(value, text, mistakes));
    raw.umask = umask.and_then(|value| read_value(value, text, mistakes));
    if let Some(processes) = processes {
        raw.process = read_tables(processes, "process", text, mistakes).ok_or(()).unwrap_or_else(|()| {
            raw.process_refused = true;
            Vec::new()
        });
    }
    if let Some(gates) = waits {
        raw.process.extend(read_tables(gates, "wait", text, mistakes).into_iter().flatten());
    }
    Ok(raw)
}

/// The tables of `[[process]]` or `[[wait]]` (`kind`), each read as a process; None
/// when the key holds no tables at all. A `[[wait]]`'s keys that are not a gate's are
/// each a mistake.
fn read_tables(
    value: Spanned<DeValue<'_>>,
    kind: &str,
    text: &str,
    mistakes: &mut Mistakes,
) -> Option<Vec<RawProcess>> {
    let at = value.span();
    let tables: Vec<_> = match value.into_inner() {
        DeValue::Array(items) => items.into_iter().collect(),
        // `[process]` where `[[process]]` is meant: read as the one table it describes.
        DeValue::Table(table) => {
            mistakes.push(Mistake::at(text, at.clone(), single_brackets(kind)));
            vec![Spanned::new(at, DeValue::Table(table))]
        }
        other => {
            let found = self::kind(&other);
            let what = if kind == "wait" { "gate" } else { "process" };
            mistakes.push(Mistake::at(
                text,
                at,
                format!("{kind}: expected [[{kind}]] tables, one per {what}, not {found}"),
            ));
            return None;
        }
    };
    let mut read = Vec::with_capacity(tables.len());
    for item in tables {
        let at = item.span();
        match item.into_inner() {
            DeValue::Table(mut table) => {
                let foreign: Vec<_> = match kind {
                    "wait" => {
                        table.keys().filter(|key| !GATE_KEYS.contains(&key.get_ref().as_ref())).cloned().collect()
                    }
                    _ => Vec::new(),
                };
                for key in foreign {
                    let why = format!(
                        "{}: a [[wait]] starts nothing, it only waits; it takes name, ready and after",
                        key.get_ref()
                    );
                    mistakes.push(Mistake::at(text, key.span(), why));
                    table.remove(&key);
                }
                let (mut process, refused) = read_table::<RawProcess>(Spanned::new(at.clone(), table), text, mistakes);
                (process.at, process.refused, process.gate) = (at, refused, kind == "wait");
                read.push(process);
            }
            other => {
                let message = format!("{kind}: expected [[{kind}]] tables, one each, not {}", self::kind(&other));
                mistakes.push(Mistake::at(text, at, message));
            }
        }
    }
    Some(read)
}

/// Reads one value as a `T`; a value of the wrong type is a mistake.
fn read_value<T: DeserializeOwned>(value: Spanned<DeValue<'_>>, text: &str, mistakes: &mut Mistakes) -> Option<T> {
    T::deserialize(ValueDeserializer::from(value)).map_err(|e| mistakes.push(toml_mistake(text, &e))).ok()
}

/// Reads `table` as a `T`, key by key: a key that `T` refuses (an unknown one, a value
/// of the wrong type) is noted in `mistakes`, left out, and returned among the refused.
fn read_table<T: DeserializeOwned + Default>(
    table: Spanned<DeTable<'_>>,
    text: &str,
    mistakes: &mut Mistakes,
) -> (T, Vec<String>) {
    let span = table.span();
    let mut table = table.into_inner();
    let mut refused = Vec::new();
    for (key, value) in table.iter() {
        let mut one = DeTable::new();
        one.insert(key.clone(), value.clone());
        if let Err(e) = T::deserialize(ValueDeserializer::from(Spanned::new(span.clone(), DeValue::Table(one)))) {
            mistakes.push(toml_mistake(text, &e));
            refused.push(key.clone());
        }
    }
    for key in &refused {
        table.remove(key);
    }
    let refused = refused.into_iter().map(|key| key.into_inner().into_owned()).collect();
    // Each key was read alone above; together they read the same way.
    let read = T::deserialize(ValueDeserializer::from(Spanned::new(span, DeValue::Table(table))));
    (
        read.unwrap_or_else(|e| {
            mistakes.push(toml_mistake(text, &e));
            T::default()
        }),
        refused,
    )
}

/// A TOML or serde error as a mistake: at its place, and said with its key where serde
/// does not say it.
pub fn toml_mistake(text: &str, error: &toml::de::Error) -> Mistake {
    // serde's messages quote the value that was refused as it is: a control character in
    // it (a "\r" escape in a string) is written out, so that the mistake stays one line.
    let message: String = error
        .message()
        .trim_end()
        .chars()
        .flat_map(|c| match c {
            '`' => "'".chars().collect::<Vec<_>>(),
            c if c.is_control() => c.escape_default().collect(),
            c => vec![c],
        })
        .collect();
    let start = error.span().map(|span| span.start);
    Mistake {
        position: start.map(|start| line_and_column(text, start)),
        message: start.and_then(|start| wrong_type(text, start, &message)).unwrap_or(message),
    }
}

/// What a TOML value is, as a mistake names it.
fn kind(value: &DeValue) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

fn single_brackets(name: &str) -> String {
    format!("{name}: write [[{name}]] with double brackets: each [[{name}]] table is one entry of a list")
}

/// `[process]` after a `[[process]]`, which TOML reports as a duplicate key: the error
/// points into the header's line.
fn duplicate_single_brackets(text: &str, at: usize, message: &str) -> Option<String> {
    let start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(start..)?.lines().next()?.trim();
    let name = line.strip_prefix('[')?.strip_suffix(']')?.trim();
    let meant = message == "duplicate key" && text.contains(&format!("[[{name}]]"));
    (meant && !name.starts_with('[') && !name.is_empty()).then(|| single_brackets(name))
}

/// A value of the wrong type, said with its key and the form it takes: serde knows
/// neither the key nor an example (`invalid type: string "nginx", expected a sequence`).
fn wrong_type(text: &str, at: usize, message: &str) -> Option<String> {
    if let Some(hint) = duplicate_single_brackets(text, at, message) {
        return Some(hint);
    }
    let (found, expected) = message.strip_prefix("invalid type: ")?.split_once(", expected ")?;
    // The key is the last `key =` on the value's line before it (inline tables hold several).
    let line = text.get(..at)?.rsplit('\n').next()?;
    let key = line.trim_end().strip_suffix('=')?.trim_end();
    let key = key.rsplit([' ', '{', ',', '\t']).next().filter(|k| !k.is_empty())?;
    let form = match key {
        "command" | "exec" => "a list such as [\"nginx\", \"-g\", \"daemon off;\"]".to_string(),
        "env" => "a table such as { LOG_LEVEL = \"debug\" }".to_string(),
        "birth_deps" | "death_deps" => "a list of names such as [\"db\"]".to_string(),
        _ => expected.replace("a sequence", "a list").replace("a map", "a table"),
    };
    let found = found.replace("sequence", "list").replace("map", "table");
    Some(format!("{key}: expected {form}, not {found}"))
}
