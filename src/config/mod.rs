//! Layered configuration: built-in defaults < `jangteo.toml` < `JANGTEO_*`
//! environment < command-line flags.
//!
//! Every setting has one snake_case name used in all layers (`listen` in the
//! file, `JANGTEO_LISTEN` in the environment, `--listen` or `--set listen=..`
//! on the command line), and one declaration (`settings.rs`: kind, default,
//! doc) from which the parser, the unknown-key check and the table in
//! docs/OPERATIONS.md come. The layers are merged as plain strings first and
//! parsed once at the end, so an error always names the setting *and* the
//! layer it came from. Unknown keys are errors, not warnings: a typo in a
//! production setting must stop the process, not be ignored silently.
//!
//! - `kinds.rs`: the kinds of value (ranges, URLs, secrets) and their checks;
//! - `settings.rs`: every setting, declared once;
//! - `groups.rs`: [`Config`], the parsed settings grouped by the subsystem
//!   that reads them, and the checks that span several settings.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

mod groups;
mod kinds;

pub use groups::*;
pub use kinds::LogFormat;

/// Declares the settings (see `settings.rs`): generates the typed
/// [`settings::Settings`], its reader and [`SETTINGS`].
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident : $kind:ty = $default:tt $(($note:literal))? ;
    )*) => {
        /// Every setting, parsed and checked (not grouped yet).
        pub(super) struct Settings {
            $(
                $(#[doc = $doc])*
                pub(super) $name: <$kind as Kind>::Out,
            )*
        }

        impl Settings {
            /// Parse every setting; the first failure names its setting
            /// and layer.
            pub(super) fn read(layers: &super::Layers) -> Result<Settings, super::ConfigError> {
                Ok(Settings {
                    $($name: layers.read::<$kind>(stringify!($name))?,)*
                })
            }
        }

        /// Every setting, in the order of the docs' table.
        pub const SETTINGS: &[super::Setting] = &[$(
            super::Setting {
                name: stringify!($name),
                default: settings!(@default $default),
                note: settings!(@note $($note)?),
                doc: &[$($doc),*],
                accepts: <$kind as Kind>::accepts,
            },
        )*];
    };
    (@default unset) => { None };
    (@default $value:literal) => { Some($value) };
    (@note) => { None };
    (@note $note:literal) => { Some($note) };
}

mod settings;

pub use settings::SETTINGS;

/// One declared setting, as the docs and the error messages see it.
#[derive(Debug)]
pub struct Setting {
    pub name: &'static str,
    /// The built-in value; `None`: unset, or derived (see `note`).
    pub default: Option<&'static str>,
    /// For the docs: what an unset default means, or a gloss of the value.
    pub note: Option<&'static str>,
    /// The meaning, one doc line per element.
    pub doc: &'static [&'static str],
    /// What the setting's kind accepts.
    pub accepts: fn() -> String,
}

impl Setting {
    /// The default as the docs' table shows it.
    pub fn default_words(&self) -> String {
        match (self.default, self.note) {
            (None, Some(note)) => note.to_string(),
            (None, None) => "unset".to_string(),
            (Some(""), _) => "empty".to_string(),
            (Some(v), None) => format!("`{v}`"),
            (Some(v), Some(note)) => format!("`{v}` ({note})"),
        }
    }

    /// The doc lines as one line.
    pub fn meaning(&self) -> String {
        self.doc
            .iter()
            .map(|line| line.trim())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The settings table of docs/OPERATIONS.md (`jangteo settings` prints it).
pub fn settings_table() -> String {
    let mut out = String::from("| setting | default | accepts | meaning |\n|---|---|---|---|\n");
    for s in SETTINGS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            s.name,
            s.default_words(),
            (s.accepts)(),
            s.meaning()
        ));
    }
    out
}

/// Environment variable that names the config file; not a setting itself.
pub const CONFIG_FILE_ENV: &str = "JANGTEO_CONFIG";
/// `JANGTEO_*` variables that are not settings: the project's scripts use
/// them (install cache, service state, tool overrides) and a server started
/// from such a shell inherits them. They are skipped, not refused; every
/// other unknown `JANGTEO_*` variable is still an error (a typo).
pub const TOOLING_ENV: &[&str] = &[
    "JANGTEO_CACHE",
    "JANGTEO_SERVICES_DIR",
    "JANGTEO_CARGO",
    "JANGTEO_BIN",
];
/// Prefix of every setting in the environment.
pub const ENV_PREFIX: &str = "JANGTEO_";
/// Config file read from the working directory when no path is given.
pub const DEFAULT_CONFIG_FILE: &str = "jangteo.toml";

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Cli,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "built-in default"),
            Source::File(p) => write!(f, "config file {}", p.display()),
            Source::Env(name) => write!(f, "environment variable {name}"),
            Source::Cli => write!(f, "command line"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown setting `{key}` (from {origin}); known settings: {known}")]
    Unknown {
        key: String,
        origin: Source,
        known: String,
    },
    #[error("invalid value for setting `{key}` (from {origin}): {reason}")]
    Invalid {
        key: String,
        origin: Source,
        reason: String,
    },
    #[error("cannot read config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// The raw layers before parsing: setting name -> (value, where it came from).
#[derive(Debug, Default, Clone)]
pub struct Layers {
    values: BTreeMap<String, (String, Source)>,
}

fn is_known(key: &str) -> bool {
    SETTINGS.iter().any(|s| s.name == key)
}

fn known_list() -> String {
    SETTINGS
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Layers {
    /// Start from the built-in defaults.
    pub fn defaults() -> Self {
        let mut layers = Layers::default();
        for setting in SETTINGS {
            if let Some(v) = setting.default {
                layers
                    .values
                    .insert(setting.name.to_string(), (v.to_string(), Source::Default));
            }
        }
        layers
    }

    /// Set one value; unknown keys are rejected.
    pub fn set(
        &mut self,
        key: &str,
        value: impl Into<String>,
        source: Source,
    ) -> Result<(), ConfigError> {
        if !is_known(key) {
            return Err(ConfigError::Unknown {
                key: key.to_string(),
                origin: source,
                known: known_list(),
            });
        }
        self.values.insert(key.to_string(), (value.into(), source));
        Ok(())
    }

    /// Merge a TOML document (the contents of `jangteo.toml`).
    pub fn merge_toml(&mut self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::File {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        for (key, value) in table {
            let source = Source::File(path.to_path_buf());
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => {
                    return Err(ConfigError::Invalid {
                        key,
                        origin: source,
                        reason: format!(
                            "expected a string, number or boolean, got {}",
                            other.type_str()
                        ),
                    })
                }
            };
            self.set(&key, text, source)?;
        }
        Ok(())
    }

    /// Merge every `JANGTEO_*` variable. `JANGTEO_CONFIG` names the file and
    /// the [`TOOLING_ENV`] variables belong to the scripts: both are
    /// skipped; any other unknown `JANGTEO_*` variable is an error.
    pub fn merge_env<I>(&mut self, vars: I) -> Result<(), ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if name == CONFIG_FILE_ENV || TOOLING_ENV.contains(&name.as_str()) {
                continue;
            }
            let key = rest.to_ascii_lowercase();
            self.set(&key, value, Source::Env(name.clone()))?;
        }
        Ok(())
    }

    /// Merge `key=value` pairs given on the command line.
    pub fn merge_cli<I, S>(&mut self, pairs: I) -> Result<(), ConfigError>
    where
        I: IntoIterator<Item = (S, String)>,
        S: AsRef<str>,
    {
        for (key, value) in pairs {
            let key = key.as_ref().replace('-', "_");
            self.set(&key, value, Source::Cli)?;
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&(String, Source)> {
        self.values.get(key)
    }

    /// Read one setting as its kind; the error names the setting and the
    /// layer the value came from.
    fn read<K: kinds::Kind>(&self, key: &str) -> Result<K::Out, ConfigError> {
        match self.get(key) {
            None => K::absent().ok_or_else(|| ConfigError::Invalid {
                key: key.to_string(),
                origin: Source::Default,
                reason: "missing".to_string(),
            }),
            Some((raw, source)) => K::parse(raw.trim()).map_err(|reason| ConfigError::Invalid {
                key: key.to_string(),
                origin: source.clone(),
                reason,
            }),
        }
    }

    fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        let source = self
            .get(key)
            .map(|(_, s)| s.clone())
            .unwrap_or(Source::Default);
        ConfigError::Invalid {
            key: key.to_string(),
            origin: source,
            reason: reason.into(),
        }
    }

    /// Parse every setting and group them.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        settings::Settings::read(self)?.into_config(self)
    }
}

impl Config {
    /// Load the configuration of a process: defaults, then the config file
    /// (explicit path, `JANGTEO_CONFIG`, or `./jangteo.toml` if present), the
    /// environment, and the command-line pairs.
    pub fn load<E>(
        explicit_file: Option<&Path>,
        env: E,
        cli: Vec<(String, String)>,
    ) -> Result<Config, ConfigError>
    where
        E: IntoIterator<Item = (String, String)>,
    {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut layers = Layers::defaults();
        let from_env = env
            .iter()
            .find(|(k, _)| k == CONFIG_FILE_ENV)
            .map(|(_, v)| PathBuf::from(v));
        let (file, required) = match (explicit_file, from_env) {
            (Some(p), _) => (p.to_path_buf(), true),
            (None, Some(p)) => (p, true),
            (None, None) => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        match std::fs::read_to_string(&file) {
            Ok(text) => layers.merge_toml(&text, &file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
            Err(e) => {
                return Err(ConfigError::File {
                    path: file,
                    reason: e.to_string(),
                })
            }
        }
        layers.merge_env(env)?;
        layers.merge_cli(cli)?;
        layers.resolve()
    }

    /// Defaults overridden by `pairs` only (no file, no environment): what
    /// tests and embedders use.
    pub fn from_pairs<I, S>(pairs: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (S, String)>,
        S: AsRef<str>,
    {
        let mut layers = Layers::defaults();
        layers.merge_cli(pairs)?;
        layers.resolve()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_resolve() {
        let c = Layers::defaults().resolve().expect("defaults are valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.engines.database_url, "sqlite://./data/jangteo.db");
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("j.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1000\"\nlog = \"debug\"\nmax_body_bytes = 10\n",
        )
        .expect("write");
        let c = Config::load(
            Some(&file),
            env(&[
                ("JANGTEO_LISTEN", "127.0.0.1:2000"),
                ("JANGTEO_LOG", "warn"),
                ("PATH", "/bin"),
            ]),
            vec![("listen".into(), "127.0.0.1:0".into())],
        )
        .expect("valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:0");
        assert_eq!(c.log, "warn");
        assert_eq!(c.http.max_body_bytes, 10);
    }

    #[test]
    fn data_dir_moves_default_database() {
        let c = Config::from_pairs([("data_dir", "/tmp/x".to_string())]).expect("valid");
        assert_eq!(c.engines.database_url, "sqlite:///tmp/x/jangteo.db");
    }

    #[test]
    fn unknown_env_is_named() {
        let err = Config::load(None, env(&[("JANGTEO_LISTN", "x")]), vec![]).expect_err("unknown");
        let msg = err.to_string();
        assert!(
            msg.contains("`listn`") && msg.contains("JANGTEO_LISTN"),
            "{msg}"
        );
    }

    #[test]
    fn the_scripts_variables_are_not_settings() {
        let vars = env(&[
            ("JANGTEO_CACHE", "/tmp/cache"),
            ("JANGTEO_SERVICES_DIR", "/tmp/state"),
            ("JANGTEO_LOG", "warn"),
        ]);
        let c = Config::load(None, vars, vec![]).expect("the scripts' variables are skipped");
        assert_eq!(c.log, "warn");
        let err = Config::load(None, env(&[("JANGTEO_CACHES", "x")]), vec![]).expect_err("typo");
        assert!(err.to_string().contains("JANGTEO_CACHES"), "{err}");
    }

    #[test]
    fn unknown_file_key_is_named() {
        let mut l = Layers::defaults();
        let err = l
            .merge_toml("colour = 1", Path::new("j.toml"))
            .expect_err("unknown");
        assert!(err.to_string().contains("`colour`"));
    }

    #[test]
    fn invalid_values_are_named() {
        for (key, value) in [
            ("listen", "nowhere"),
            ("max_body_bytes", "-1"),
            ("log_format", "xml"),
            ("cookie_secure", "yes please"),
            ("database_url", "postgres://x"),
            ("session_ttl_secs", "0"),
            ("log", "[[["),
            ("mongodb_url", "http://mongo:27017"),
            ("kafka_brokers", "kafka"),
            ("kafka_brokers", "a:9092,,b:9092"),
            ("kafka_brokers", "a:notaport"),
            ("kafka_partitions", "0"),
            ("kafka_partitions", "5000"),
            ("kafka_fetch_wait_ms", "0"),
            ("kafka_fetch_wait_ms", "5001"),
            ("kafka_linger_ms", "1001"),
            ("kafka_linger_ms", "-1"),
            ("node_id", "has space"),
            ("node_id", ""),
            ("cluster_gap_fill_ms", "0"),
            ("cluster_catchup_ms", "soon"),
            ("reservation_sweep_secs", "0"),
            ("database_pool_size", "0"),
            ("max_uri_bytes", "100"),
            ("metrics_token", ""),
            ("metrics_token", "short"),
            ("metrics_token", "has a space in it somewhere"),
            ("metrics_enabled", "maybe"),
            ("reservation_max_secs", "0"),
            ("low_stock_threshold", "-1"),
            ("env", "staging"),
            ("order_payment_window_secs", "0"),
            ("outbox_poll_ms", "0"),
            ("outbox_kinds", "send_email"),
            ("chat_direct_send_rate", "0"),
            ("chat_direct_send_burst", "-1"),
            ("ws_max_connections_per_user", "0"),
            ("ws_allowed_origins", "example.com"),
            ("ws_allowed_origins", "https://example.com/app"),
            ("ws_allowed_origins", "null"),
            ("ws_allowed_origins", "https://"),
            ("reservation_max_secs", "999999999999"),
            ("max_uri_bytes", "65535"),
            ("chat_commit_delay_us", "20001"),
            ("chat_commit_delay_us", "soon"),
            ("media_orphan_hours", "-0.5"),
            ("media_orphan_hours", "NaN"),
            ("media_orphan_hours", "8761"),
        ] {
            let err = Config::from_pairs([(key, value.to_string())]).expect_err(key);
            assert!(
                err.to_string().contains(&format!("`{key}`")),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn the_commit_delay_and_fractional_orphan_hours_parse() {
        let c = Config::from_pairs([
            ("chat_commit_delay_us", "0".to_string()),
            ("media_orphan_hours", "0.5".to_string()),
        ])
        .expect("valid");
        assert_eq!(c.chat.commit_delay, Some(Duration::ZERO));
        assert_eq!(c.uploads.orphan_after, Duration::from_secs(1800));
        let c = Config::from_pairs([("media_orphan_hours", "24".to_string())]).expect("valid");
        assert_eq!(c.chat.commit_delay, None, "unset: the engine's default");
    }

    #[test]
    fn distributed_settings_parse() {
        let c = Config::from_pairs([
            (
                "mongodb_url",
                "mongodb://127.0.0.1:27017/jangteo".to_string(),
            ),
            ("kafka_brokers", "127.0.0.1:9092,10.0.0.2:9093".to_string()),
            ("node_id", "node-1.a_b".to_string()),
        ])
        .expect("valid");
        assert_eq!(
            c.engines.kafka_brokers.as_deref(),
            Some("127.0.0.1:9092,10.0.0.2:9093")
        );
        assert_eq!(c.engines.node_id, "node-1.a_b");
        assert_eq!(c.engines.kafka_partitions, 8);
        assert_eq!(c.engines.kafka_fetch_wait_ms, 10);
        assert_eq!(c.engines.kafka_linger_ms, 0);
        // Unset: the embedded twins, and a node id of its own.
        let d = Config::from_pairs(Vec::<(&str, String)>::new()).expect("defaults");
        assert!(
            d.engines.mongodb_url.is_none()
                && d.engines.kafka_brokers.is_none()
                && d.engines.redis_url.is_none()
        );
        assert!(d
            .engines
            .node_id
            .ends_with(&format!("-{}", std::process::id())));
    }

    #[test]
    fn the_operations_doc_shows_the_declared_settings() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/OPERATIONS.md"))
                .expect("doc");
        let table = settings_table();
        assert!(
            doc.contains(&table),
            "docs/OPERATIONS.md does not hold the settings table as declared in \
             src/config/settings.rs; replace it with the output of `cargo run -- settings`:\n{table}"
        );
    }

    #[test]
    fn every_default_is_valid_and_every_name_declared_once() {
        let mut names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a setting is declared twice");
        for s in SETTINGS {
            assert!(
                !s.meaning().is_empty() && !s.meaning().contains('|'),
                "{}: the meaning must be one table cell",
                s.name
            );
        }
        Layers::defaults().resolve().expect("defaults are valid");
    }

    #[test]
    fn allowed_origins_are_normalised() {
        let c = Config::from_pairs([(
            "ws_allowed_origins",
            " https://Jangteo.example/ ,, http://localhost:3000,capacitor://localhost".to_string(),
        )])
        .expect("valid");
        assert_eq!(
            c.http.ws_allowed_origins,
            [
                "https://jangteo.example",
                "http://localhost:3000",
                "capacitor://localhost"
            ]
        );
        let d = Config::from_pairs(Vec::<(&str, String)>::new()).expect("defaults");
        assert!(d.http.ws_allowed_origins.is_empty());
    }

    #[test]
    fn missing_explicit_file_fails() {
        let err = Config::load(Some(Path::new("/nonexistent/j.toml")), env(&[]), vec![])
            .expect_err("missing");
        assert!(matches!(err, ConfigError::File { .. }));
    }
}
