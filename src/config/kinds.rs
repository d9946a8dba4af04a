//! The kinds of value a setting can hold: each parses the raw text of one
//! layer into a typed value and checks it, and says in words what it
//! accepts (for error messages and the table in docs/OPERATIONS.md).
//!
//! A setting's declaration (`settings.rs`) names its kind, so a range or a
//! format is written once, beside the setting, and nowhere else.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

/// No upper bound, for a [`Num`].
pub const MANY: i64 = i64::MAX;
/// No upper bound, for a duration.
pub const ANY: u64 = u64::MAX;

/// How one kind of setting value is read.
pub trait Kind {
    /// The parsed value.
    type Out;
    /// Parse a present value (already trimmed). The error is the reason,
    /// without the setting's name (the caller adds it and the layer).
    fn parse(raw: &str) -> Result<Self::Out, String>;
    /// The value of a setting that no layer sets and that has no default;
    /// `None`: such a setting is missing, an error.
    fn absent() -> Option<Self::Out> {
        None
    }
    /// What the kind accepts, in a few words.
    fn accepts() -> String;
}

/// Optional: unset (or set to the empty string) is `None`.
impl<K: Kind> Kind for Option<K> {
    type Out = Option<K::Out>;
    fn parse(raw: &str) -> Result<Self::Out, String> {
        if raw.is_empty() {
            return Ok(None);
        }
        K::parse(raw).map(Some)
    }
    fn absent() -> Option<Self::Out> {
        Some(None)
    }
    fn accepts() -> String {
        K::accepts()
    }
}

fn parse_as<T>(raw: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    raw.parse::<T>().map_err(|e| format!("{e} (got {raw:?})"))
}

/// Any text.
pub struct Text;
impl Kind for Text {
    type Out = String;
    fn parse(raw: &str) -> Result<String, String> {
        Ok(raw.to_string())
    }
    fn accepts() -> String {
        "text".into()
    }
}

/// `true` or `false`.
pub struct Flag;
impl Kind for Flag {
    type Out = bool;
    fn parse(raw: &str) -> Result<bool, String> {
        parse_as(raw)
    }
    fn accepts() -> String {
        "`true`, `false`".into()
    }
}

/// `HOST:PORT` to bind.
pub struct Addr;
impl Kind for Addr {
    type Out = SocketAddr;
    fn parse(raw: &str) -> Result<SocketAddr, String> {
        parse_as(raw)
    }
    fn accepts() -> String {
        "`IP:PORT`".into()
    }
}

fn range_words(min: i128, max: i128, unit: &str) -> String {
    let unit = if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    };
    if max >= i128::from(i64::MAX) {
        format!("{min} or more{unit}")
    } else {
        format!("{min}..={max}{unit}")
    }
}

/// An integer in `MIN..=MAX`, held as `T`.
pub struct Num<T, const MIN: i64, const MAX: i64>(PhantomData<T>);
impl<T: TryFrom<i64>, const MIN: i64, const MAX: i64> Kind for Num<T, MIN, MAX> {
    type Out = T;
    fn parse(raw: &str) -> Result<T, String> {
        let n: i64 = parse_as(raw)?;
        if !(MIN..=MAX).contains(&n) {
            return Err(format!("expected {} (got {n})", Self::accepts()));
        }
        T::try_from(n).map_err(|_| format!("expected {} (got {n})", Self::accepts()))
    }
    fn accepts() -> String {
        range_words(i128::from(MIN), i128::from(MAX), "")
    }
}

/// A whole number of time units in `MIN..=MAX`, as a `Duration`.
macro_rules! duration_kind {
    ($(#[$doc:meta])* $name:ident, $unit:literal, $of:expr) => {
        $(#[$doc])*
        pub struct $name<const MIN: u64, const MAX: u64>;
        impl<const MIN: u64, const MAX: u64> Kind for $name<MIN, MAX> {
            type Out = Duration;
            fn parse(raw: &str) -> Result<Duration, String> {
                let n: u64 = parse_as(raw)?;
                if !(MIN..=MAX).contains(&n) {
                    return Err(format!("expected {} (got {n})", Self::accepts()));
                }
                let of: fn(u64) -> Duration = $of;
                Ok(of(n))
            }
            fn accepts() -> String {
                range_words(i128::from(MIN), i128::from(MAX), $unit)
            }
        }
    };
}
duration_kind!(
    /// Seconds.
    Secs,
    "s",
    Duration::from_secs
);
duration_kind!(
    /// Milliseconds.
    Millis,
    "ms",
    Duration::from_millis
);
duration_kind!(
    /// Microseconds.
    Micros,
    "µs",
    Duration::from_micros
);
duration_kind!(
    /// Whole hours (`MAX` at most 10 years, so no overflow).
    Hours,
    "h",
    |h| Duration::from_secs(h.saturating_mul(3600))
);

/// Hours with fractions (`0.5` is 30 minutes), `MIN..=MAX`.
pub struct FractionalHours<const MIN: u64, const MAX: u64>;
impl<const MIN: u64, const MAX: u64> Kind for FractionalHours<MIN, MAX> {
    type Out = Duration;
    fn parse(raw: &str) -> Result<Duration, String> {
        let h: f64 = parse_as(raw)?;
        let (min, max) = (MIN as f64, MAX as f64);
        if !(min..=max).contains(&h) {
            return Err(format!("expected {}", Self::accepts()));
        }
        Ok(Duration::from_secs_f64(h * 3600.0))
    }
    fn accepts() -> String {
        format!("{MIN}..={MAX} h, fractions allowed")
    }
}

/// Days with fractions (`0.5` is 12 hours), `MIN..=MAX`.
pub struct FractionalDays<const MIN: u64, const MAX: u64>;
impl<const MIN: u64, const MAX: u64> Kind for FractionalDays<MIN, MAX> {
    type Out = Duration;
    fn parse(raw: &str) -> Result<Duration, String> {
        let d: f64 = parse_as(raw)?;
        let (min, max) = (MIN as f64, MAX as f64);
        if !(d > 0.0 && (min..=max).contains(&d)) {
            return Err(format!("expected {}", Self::accepts()));
        }
        Ok(Duration::from_secs_f64(d * 86_400.0))
    }
    fn accepts() -> String {
        format!("more than {MIN}, at most {MAX} days; fractions allowed")
    }
}

/// A positive number (a rate, a burst).
pub struct Positive;
impl Kind for Positive {
    type Out = f64;
    fn parse(raw: &str) -> Result<f64, String> {
        let v: f64 = parse_as(raw)?;
        if !(v.is_finite() && v > 0.0) {
            return Err("must be a positive number".into());
        }
        Ok(v)
    }
    fn accepts() -> String {
        "a number > 0".into()
    }
}

/// An `http://` or `https://` URL; a trailing slash is dropped.
pub struct Url;
impl Kind for Url {
    type Out = String;
    fn parse(raw: &str) -> Result<String, String> {
        if !(raw.starts_with("http://") || raw.starts_with("https://")) || raw.len() > 500 {
            return Err("expected an http:// or https:// URL".into());
        }
        Ok(raw.trim_end_matches('/').to_string())
    }
    fn accepts() -> String {
        "http(s) URL".into()
    }
}

/// A secret or an id: visible ASCII, at most 500 bytes; empty is unset.
pub struct Secret;
impl Kind for Secret {
    type Out = Option<String>;
    fn parse(raw: &str) -> Result<Option<String>, String> {
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() > 500 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("expected visible ASCII characters".into());
        }
        Ok(Some(raw.to_string()))
    }
    fn absent() -> Option<Option<String>> {
        Some(None)
    }
    fn accepts() -> String {
        "visible ASCII".into()
    }
}

/// A bearer token: 16..=512 visible ASCII characters. Unlike a [`Secret`],
/// the empty string is refused: an operator who meant to protect something
/// must not open it by accident.
pub struct Token;
impl Kind for Token {
    type Out = Option<String>;
    fn parse(raw: &str) -> Result<Option<String>, String> {
        if !(16..=512).contains(&raw.len()) || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("expected 16..=512 visible ASCII characters (no spaces)".into());
        }
        Ok(Some(raw.to_string()))
    }
    fn absent() -> Option<Option<String>> {
        Some(None)
    }
    fn accepts() -> String {
        "16..=512 visible ASCII".into()
    }
}

/// `text` or `json` logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}
impl Kind for LogFormat {
    type Out = LogFormat;
    fn parse(raw: &str) -> Result<LogFormat, String> {
        match raw {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("expected `text` or `json`, got {other:?}")),
        }
    }
    fn accepts() -> String {
        "`text`, `json`".into()
    }
}

/// `development` or `production`: whether this is production.
pub struct Deployment;
impl Kind for Deployment {
    type Out = bool;
    fn parse(raw: &str) -> Result<bool, String> {
        match raw {
            "development" => Ok(false),
            "production" => Ok(true),
            other => Err(format!(
                "expected `development` or `production`, got {other:?}"
            )),
        }
    }
    fn accepts() -> String {
        "`development`, `production`".into()
    }
}

/// SQLite's `synchronous` pragma, as SQLite spells it.
pub struct Synchronous;
impl Kind for Synchronous {
    type Out = &'static str;
    fn parse(raw: &str) -> Result<&'static str, String> {
        match raw {
            "full" => Ok("FULL"),
            "normal" => Ok("NORMAL"),
            other => Err(format!("expected `full` or `normal`, got {other:?}")),
        }
    }
    fn accepts() -> String {
        "`full`, `normal`".into()
    }
}

/// A `tracing` filter.
pub struct LogFilter;
impl Kind for LogFilter {
    type Out = String;
    fn parse(raw: &str) -> Result<String, String> {
        tracing_subscriber::EnvFilter::try_new(raw)
            .map(|_| raw.to_string())
            .map_err(|_| format!("not a valid tracing filter: {raw:?}"))
    }
    fn accepts() -> String {
        "tracing filter".into()
    }
}

/// The SQL database: SQLite (a file) or MySQL/MariaDB.
pub struct DatabaseUrl;
impl Kind for DatabaseUrl {
    type Out = String;
    fn parse(raw: &str) -> Result<String, String> {
        if !["sqlite:", "mysql:", "mariadb:"]
            .iter()
            .any(|p| raw.starts_with(p))
        {
            return Err("expected sqlite://PATH or mysql://USER@HOST:PORT/DATABASE".into());
        }
        if raw.contains(":memory:") || raw.contains("mode=memory") {
            return Err("in-memory SQLite is not supported (the store uses separate reader and writer connections)".into());
        }
        Ok(raw.to_string())
    }
    fn accepts() -> String {
        "`sqlite://`, `mysql://` URL".into()
    }
}

/// A URL with one of a few schemes.
pub struct Scheme<const WHICH: u8>;
/// `redis://`, `rediss://`.
pub const REDIS: u8 = 0;
/// `mongodb://`, `mongodb+srv://`.
pub const MONGODB: u8 = 1;
/// `smtp://`, `smtps://`.
pub const SMTP: u8 = 2;
impl<const WHICH: u8> Scheme<WHICH> {
    fn schemes() -> (&'static [&'static str], &'static str) {
        match WHICH {
            REDIS => (&["redis://", "rediss://"], "redis://HOST:PORT"),
            MONGODB => (&["mongodb://", "mongodb+srv://"], "mongodb://HOST:PORT/DB"),
            _ => (&["smtp://", "smtps://"], "smtp://... or smtps://..."),
        }
    }
}
impl<const WHICH: u8> Kind for Scheme<WHICH> {
    type Out = String;
    fn parse(raw: &str) -> Result<String, String> {
        let (schemes, shape) = Self::schemes();
        if !schemes.iter().any(|s| raw.starts_with(s)) {
            return Err(format!("expected {shape}"));
        }
        Ok(raw.to_string())
    }
    fn accepts() -> String {
        let (schemes, _) = Self::schemes();
        schemes
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `HOST:PORT[,HOST:PORT...]`.
pub struct Brokers;
impl Kind for Brokers {
    type Out = String;
    fn parse(raw: &str) -> Result<String, String> {
        let ok = raw.split(',').all(|hp| {
            hp.rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        });
        if !ok {
            return Err("expected HOST:PORT[,HOST:PORT...]".into());
        }
        Ok(raw.to_string())
    }
    fn accepts() -> String {
        "`HOST:PORT,...`".into()
    }
}

/// A node's name: 1..=64 of `A-Z a-z 0-9 - _ .`; unset: `hostname-pid`.
pub struct NodeId;
impl Kind for NodeId {
    type Out = String;
    fn parse(raw: &str) -> Result<String, String> {
        if raw.is_empty()
            || raw.len() > 64
            || !raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err("expected 1..64 characters of A-Z a-z 0-9 - _ .".into());
        }
        Ok(raw.to_string())
    }
    fn absent() -> Option<String> {
        Some(default_node_id())
    }
    fn accepts() -> String {
        "1..=64 of `A-Za-z0-9-_.`".into()
    }
}

/// `hostname-pid`: unique per process on a machine, readable in logs.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(40)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string());
    format!("{host}-{}", std::process::id())
}

/// An email's From: `Name <address>` or an address.
pub struct MailFrom;
impl Kind for MailFrom {
    type Out = String;
    fn parse(raw: &str) -> Result<String, String> {
        if raw.is_empty() || raw.len() > 200 {
            return Err("expected `Name <address>` or an address".into());
        }
        Ok(raw.to_string())
    }
    fn accepts() -> String {
        "`Name <address>`".into()
    }
}

/// Comma-separated web origins, `scheme://host[:port]` each (as browsers
/// send them in `Origin`: no path, no trailing slash), lower-cased. Empty
/// entries are skipped; `null` is not an origin one can allow (sandboxed
/// frames and files all send it).
pub struct Origins;
impl Kind for Origins {
    type Out = Vec<String>;
    fn parse(raw: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let entry = entry.trim_end_matches('/').to_ascii_lowercase();
            let valid = entry.split_once("://").is_some_and(|(scheme, rest)| {
                !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                    && !rest.is_empty()
                    && !rest.contains('/')
                    && rest.chars().all(|c| c.is_ascii_graphic())
            });
            if !valid {
                return Err(format!(
                    "expected scheme://host[:port] entries, got {entry:?}"
                ));
            }
            out.push(entry);
        }
        Ok(out)
    }
    fn accepts() -> String {
        "`scheme://host[:port],...`".into()
    }
}

/// Some of the outbox job kinds, comma-separated.
pub struct OutboxKinds;
impl Kind for OutboxKinds {
    type Out = Vec<String>;
    fn parse(raw: &str) -> Result<Vec<String>, String> {
        let all = crate::service::outbox::ALL_KINDS;
        let kinds: Vec<String> = raw
            .split(',')
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect();
        if kinds.is_empty() || kinds.iter().any(|k| !all.contains(&k.as_str())) {
            return Err(format!("expected some of {}", all.join(", ")));
        }
        Ok(kinds)
    }
    fn accepts() -> String {
        "job kinds, comma-separated".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_and_say_what_they_accept() {
        assert_eq!(Num::<u32, 1, 50>::parse("50"), Ok(50));
        assert!(Num::<u32, 1, 50>::parse("51")
            .expect_err("above")
            .contains("1..=50"));
        assert!(Num::<u32, 1, 50>::parse("-1").is_err());
        assert_eq!(Num::<usize, 1, { i64::MAX }>::accepts(), "1 or more");
        assert_eq!(Secs::<1, 60>::parse("60"), Ok(Duration::from_secs(60)));
        assert_eq!(Secs::<1, 60>::accepts(), "1..=60 s");
        assert_eq!(Hours::<0, 24>::parse("2"), Ok(Duration::from_secs(7200)));
        assert_eq!(
            FractionalHours::<0, 10>::parse("0.5"),
            Ok(Duration::from_secs(1800))
        );
        assert!(FractionalHours::<0, 10>::parse("NaN").is_err());
    }

    #[test]
    fn optional_values_take_the_empty_string_as_unset() {
        assert_eq!(<Option<Url>>::parse(""), Ok(None));
        assert_eq!(<Option<Url>>::absent(), Some(None));
        assert!(<Option<Url>>::parse("ftp://x").is_err());
        assert_eq!(Secret::parse(""), Ok(None));
        assert!(Token::parse("").is_err(), "an empty token is refused");
        assert!(NodeId::parse("").is_err());
    }
}
