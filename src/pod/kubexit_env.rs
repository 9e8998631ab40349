//! kubexit's environment variables, so that a pod spec written for kubexit works with
//! exeunt's binary in its place. Each variable overrides the matching key of the role
//! map's `[pod]` table.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::duration;
use crate::plan::{DEFAULT_BIRTH_TIMEOUT, DEFAULT_GRAVEYARD, Pod};
use crate::quoted::Quoted;
use crate::rolemap::{is_valid_name, name_problem};

/// kubexit's grace period when none is given: used when kubexit's variables, not a
/// role map, configure exeunt.
pub const KUBEXIT_DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// A kubexit variable that cannot be used, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubexitError {
    NotUtf8(&'static str),
    /// A list of deps, without KUBEXIT_NAME to say whose they are.
    NeedsName(&'static str),
    Invalid {
        variable: &'static str,
        problem: String,
    },
}

impl fmt::Display for KubexitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KubexitError::NotUtf8(variable) => write!(f, "{variable} is not valid UTF-8"),
            KubexitError::NeedsName(variable) => write!(f, "{variable} needs KUBEXIT_NAME, this container's name"),
            KubexitError::Invalid { variable, problem } => write!(f, "{variable}: {problem}"),
        }
    }
}

impl std::error::Error for KubexitError {}

/// What kubexit's variables say.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub pod: Option<Pod>,
    /// KUBEXIT_GRACE_PERIOD.
    pub grace: Option<Duration>,
    /// KUBEXIT_POD_NAME or KUBEXIT_NAMESPACE was set: accepted, and not needed.
    pub api_variables_ignored: bool,
}

/// Reads the variables over `base` (the role map's `[pod]`, if any). `env` looks one up.
pub fn read(base: Option<Pod>, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Settings, KubexitError> {
    let var = |name: &'static str| -> Result<Option<String>, KubexitError> {
        match env(name) {
            None => Ok(None),
            Some(value) => value.into_string().map(Some).map_err(|_| KubexitError::NotUtf8(name)),
        }
    };
    let invalid = |variable: &'static str, problem: String| KubexitError::Invalid { variable, problem };
    let name = var("KUBEXIT_NAME")?.filter(|n| !n.is_empty());
    let graveyard = var("KUBEXIT_GRAVEYARD")?.filter(|g| !g.is_empty());
    let death_deps = var("KUBEXIT_DEATH_DEPS")?;
    let birth_deps = var("KUBEXIT_BIRTH_DEPS")?;
    let birth_timeout = var("KUBEXIT_BIRTH_TIMEOUT")?.filter(|t| !t.is_empty());
    let grace = match var("KUBEXIT_GRACE_PERIOD")?.filter(|t| !t.is_empty()) {
        Some(text) => Some(duration::parse(&text).map_err(|e| invalid("KUBEXIT_GRACE_PERIOD", e.to_string()))?),
        None => None,
    };
    let api_variables_ignored = var("KUBEXIT_POD_NAME")?.is_some() || var("KUBEXIT_NAMESPACE")?.is_some();
    let run = var("EXEUNT_POD_UID")?.filter(|uid| !uid.is_empty()).map(pod_uid).transpose()?;
    let ignore_code = go_bool("KUBEXIT_IGNORE_CODE_ON_DEATH_DEPS", var("KUBEXIT_IGNORE_CODE_ON_DEATH_DEPS")?)?;

    let mut pod = match (base, &name) {
        (Some(pod), _) => pod,
        (None, Some(_)) => Pod {
            name: String::new(),
            graveyard: PathBuf::from(DEFAULT_GRAVEYARD),
            death_deps: Vec::new(),
            birth_deps: Vec::new(),
            birth_timeout: DEFAULT_BIRTH_TIMEOUT,
            ignore_death_dep_code: false,
            run: None,
        },
        (None, None) => {
            let orphaned = [("KUBEXIT_DEATH_DEPS", &death_deps), ("KUBEXIT_BIRTH_DEPS", &birth_deps)]
                .into_iter()
                .find(|(_, value)| value.as_deref().is_some_and(|v| !v.is_empty()));
            if let Some((variable, _)) = orphaned {
                return Err(KubexitError::NeedsName(variable));
            }
            return Ok(Settings { pod: None, grace, api_variables_ignored });
        }
    };
    if let Some(name) = name {
        if !is_valid_name(&name) {
            return Err(invalid("KUBEXIT_NAME", name_problem(&name)));
        }
        pod.name = name;
    }
    if let Some(graveyard) = graveyard {
        pod.graveyard = directory("KUBEXIT_GRAVEYARD", &graveyard)?;
    }
    if let Some(deps) = death_deps {
        pod.death_deps = names("KUBEXIT_DEATH_DEPS", &deps)?;
    }
    if let Some(deps) = birth_deps {
        pod.birth_deps = names("KUBEXIT_BIRTH_DEPS", &deps)?;
    }
    if let Some(text) = birth_timeout {
        pod.birth_timeout = duration::parse(&text).map_err(|e| invalid("KUBEXIT_BIRTH_TIMEOUT", e.to_string()))?;
    }
    if let Some(ignore) = ignore_code {
        pod.ignore_death_dep_code = ignore;
    }
    if run.is_some() {
        pod.run = run;
    }
    Ok(Settings { pod: Some(pod), grace, api_variables_ignored })
}

/// EXEUNT_POD_UID: what Kubernetes gives as `metadata.uid`, bounded, as it is written
/// into every tombstone.
fn pod_uid(uid: String) -> Result<String, KubexitError> {
    if uid.len() > 128 || !uid.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        let problem = format!("{} is not a pod's uid (at most 128 of a-z, A-Z, 0-9, -, _ and .)", Quoted(&uid));
        return Err(KubexitError::Invalid { variable: "EXEUNT_POD_UID", problem });
    }
    Ok(uid)
}

/// A boolean read as Go's strconv.ParseBool reads it, as kubexit does; empty is unset.
fn go_bool(variable: &'static str, text: Option<String>) -> Result<Option<bool>, KubexitError> {
    match text.as_deref() {
        None | Some("") => Ok(None),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(Some(true)),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(Some(false)),
        Some(other) => {
            let problem = format!("{} is neither true nor false", Quoted(other));
            Err(KubexitError::Invalid { variable, problem })
        }
    }
}

/// An absolute path to a directory, without its trailing slashes.
fn directory(variable: &'static str, path: &str) -> Result<PathBuf, KubexitError> {
    let trimmed = path.trim_end_matches('/');
    if !path.starts_with('/') || trimmed.is_empty() {
        let problem = format!("{} must be an absolute path to a directory", Quoted(path));
        return Err(KubexitError::Invalid { variable, problem });
    }
    Ok(PathBuf::from(trimmed))
}

/// A comma-separated list of container names; blanks around names are allowed.
fn names(variable: &'static str, list: &str) -> Result<Vec<String>, KubexitError> {
    list.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| match is_valid_name(n) {
            true => Ok(n.to_string()),
            false => Err(KubexitError::Invalid { variable, problem: name_problem(n) }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn kubexit_variables_make_a_pod() {
        let settings = read(
            None,
            &env(&[
                ("KUBEXIT_NAME", "queue"),
                ("KUBEXIT_GRAVEYARD", "/graveyard/"),
                ("KUBEXIT_DEATH_DEPS", "forwarder, logger"),
                ("KUBEXIT_BIRTH_DEPS", "db-proxy"),
                ("KUBEXIT_BIRTH_TIMEOUT", "45s"),
                ("KUBEXIT_GRACE_PERIOD", "5s"),
                ("KUBEXIT_POD_NAME", "job-x7"),
            ]),
        )
        .expect("valid");
        let pod = settings.pod.expect("a pod");
        assert_eq!(pod.name, "queue");
        assert_eq!(pod.graveyard, PathBuf::from("/graveyard"));
        assert_eq!(pod.death_deps, ["forwarder", "logger"]);
        assert_eq!(pod.birth_deps, ["db-proxy"]);
        assert_eq!(pod.birth_timeout, Duration::from_secs(45));
        assert_eq!(settings.grace, Some(Duration::from_secs(5)));
        assert!(settings.api_variables_ignored);
    }

    #[test]
    fn no_kubexit_name_means_no_pod() {
        assert_eq!(read(None, &env(&[])), Ok(Settings::default()));
        let err = read(None, &env(&[("KUBEXIT_DEATH_DEPS", "a")])).expect_err("needs a name").to_string();
        assert_eq!(err, "KUBEXIT_DEATH_DEPS needs KUBEXIT_NAME, this container's name");
    }

    #[test]
    fn hostile_names_are_refused_before_anything_is_written() {
        let err = read(None, &env(&[("KUBEXIT_NAME", "../../etc/passwd")])).expect_err("a path").to_string();
        assert!(err.starts_with("KUBEXIT_NAME: '../../etc/passwd' is not a valid name"), "{err}");
        let err = read(None, &env(&[("KUBEXIT_NAME", "a"), ("KUBEXIT_DEATH_DEPS", "b,../c")]))
            .expect_err("a path")
            .to_string();
        assert!(err.starts_with("KUBEXIT_DEATH_DEPS: '../c'"), "{err}");
        let err = read(None, &env(&[("KUBEXIT_NAME", "a"), ("KUBEXIT_GRAVEYARD", "graveyard")]))
            .expect_err("relative")
            .to_string();
        assert!(err.starts_with("KUBEXIT_GRAVEYARD: 'graveyard' must be an absolute path"), "{err}");
    }

    #[test]
    fn variables_override_the_role_maps_pod_table() {
        let base = Pod {
            name: "queue".into(),
            graveyard: "/g".into(),
            death_deps: vec!["a".into()],
            birth_deps: vec![],
            birth_timeout: DEFAULT_BIRTH_TIMEOUT,
            ignore_death_dep_code: false,
            run: None,
        };
        let settings = read(Some(base), &env(&[("KUBEXIT_DEATH_DEPS", "b")])).expect("valid");
        let pod = settings.pod.expect("a pod");
        assert_eq!((pod.name.as_str(), pod.death_deps.as_slice()), ("queue", ["b".to_string()].as_slice()));
    }
}
