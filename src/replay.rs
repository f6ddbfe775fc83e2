//! `provd replay`: sends every `*.request.xml` of a directory, in name order, to a SOAP server
//! (provd or a OneSpan server) and compares each answer with its `*.response.xml` after
//! masking the volatile values (times, registration ids, activation passwords and codes,
//! serial numbers). `--record` writes the masked answers instead. The integration test of the
//! fixtures uses the same masks and comparison.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::Deserialize;

/// One mask: every match of `pattern` is replaced by `replacement` (taken literally).
#[derive(Debug, Clone, Deserialize)]
pub struct MaskRule {
    pub pattern: String,
    pub replacement: String,
}

/// A masks file: `[[mask]]` tables (TOML) or `{"mask": [...]}` (JSON).
#[derive(Debug, Deserialize)]
struct MaskFile {
    #[serde(default)]
    mask: Vec<MaskRule>,
}

/// Compiled masks, applied in order.
pub struct Masks {
    rules: Vec<(Regex, String)>,
}

/// provd's masks. They match only well-formed values, so a malformed one still differs.
pub const DEFAULT_MASKS: &[(&str, &str)] = &[
    (
        r#"<value xsi:type="xsd:int">\d{10}</value><attributeID>PROVFLD_SERVER_TIME</attributeID>"#,
        r#"<value xsi:type="xsd:int">{UNIX_TIME}</value><attributeID>PROVFLD_SERVER_TIME</attributeID>"#,
    ),
    (
        r"<registrationID>[A-Za-z0-9]{8}</registrationID>",
        "<registrationID>{REGISTRATION_ID}</registrationID>",
    ),
    (
        r"<activationPassword>[A-HJ-NP-Z2-9]{9}</activationPassword>",
        "<activationPassword>{ACTIVATION_PASSWORD}</activationPassword>",
    ),
    (
        r"<serialNumber>VDS\d{7}</serialNumber>",
        "<serialNumber>{SERIAL_NUMBER}</serialNumber>",
    ),
    // provisioningExecute results. The seed's serial numbers are random.
    (
        r#"<value xsi:type="xsd:string">VDS\d{7}</value><attributeID>PROVFLD_SERIAL_NO</attributeID>"#,
        r#"<value xsi:type="xsd:string">{SERIAL_NUMBER}</value><attributeID>PROVFLD_SERIAL_NO</attributeID>"#,
    ),
    // Activation data protected by a password (REGISTER's code, MDL_REGISTER's Activation
    // Message 1) is salt | IV | C | MAC: 16 + 16 bytes, whole AES blocks, 32 bytes of MAC, in
    // uppercase hex, so a multiple of 32 hex characters, at least 5 blocks' worth.
    (
        r#"<value xsi:type="xsd:string">(?:[0-9A-F]{32}){5,}</value><attributeID>PROVFLD_ACTIVATION_CODE</attributeID>"#,
        r#"<value xsi:type="xsd:string">{ACTIVATION_CODE}</value><attributeID>PROVFLD_ACTIVATION_CODE</attributeID>"#,
    ),
    (
        r#"<value xsi:type="xsd:string">(?:[0-9A-F]{32}){5,}</value><attributeID>PROVFLD_ACTIVATION_MESSAGE</attributeID>"#,
        r#"<value xsi:type="xsd:string">{ACTIVATION_MESSAGE}</value><attributeID>PROVFLD_ACTIVATION_MESSAGE</attributeID>"#,
    ),
    (
        r#"<value xsi:type="xsd:string">[A-Za-z0-9]{8}</value><attributeID>PROVFLD_REGISTRATIONID</attributeID>"#,
        r#"<value xsi:type="xsd:string">{REGISTRATION_ID}</value><attributeID>PROVFLD_REGISTRATIONID</attributeID>"#,
    ),
    (
        r#"<value xsi:type="xsd:string">[A-HJ-NP-Z2-9]{9}</value><attributeID>PROVFLD_ACTIVATION_PASSWORD</attributeID>"#,
        r#"<value xsi:type="xsd:string">{ACTIVATION_PASSWORD}</value><attributeID>PROVFLD_ACTIVATION_PASSWORD</attributeID>"#,
    ),
];

impl Masks {
    /// provd's masks ([`DEFAULT_MASKS`]).
    pub fn provd() -> Self {
        Self::from_pairs(DEFAULT_MASKS.iter().map(|(p, r)| (*p, *r))).expect("valid defaults")
    }

    pub fn none() -> Self {
        Masks { rules: Vec::new() }
    }

    fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut m = Self::none();
        for (p, r) in pairs {
            m.add(p, r)?;
        }
        Ok(m)
    }

    /// Adds one rule after the others.
    pub fn add(&mut self, pattern: &str, replacement: &str) -> Result<()> {
        let re = Regex::new(pattern).with_context(|| format!("mask pattern {pattern:?}"))?;
        self.rules.push((re, replacement.to_owned()));
        Ok(())
    }

    /// Adds `PATTERN=REPLACEMENT` (split at the last `=`: a regular expression may hold one).
    pub fn add_spec(&mut self, spec: &str) -> Result<()> {
        let Some((p, r)) = spec.rsplit_once('=') else {
            bail!("--mask takes PATTERN=REPLACEMENT, got {spec:?}");
        };
        self.add(p, r)
    }

    /// Adds the rules of a TOML (`[[mask]] pattern = "..." replacement = "..."`) or JSON
    /// (`{"mask": [{"pattern": ..., "replacement": ...}]}`) file, by extension.
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading masks {}", path.display()))?;
        let file: MaskFile = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?
        } else {
            toml::from_str(&text).with_context(|| format!("{}", path.display()))?
        };
        for rule in file.mask {
            self.add(&rule.pattern, &rule.replacement)?;
        }
        Ok(())
    }

    pub fn apply(&self, xml: &str) -> String {
        let mut out = xml.to_owned();
        for (re, replacement) in &self.rules {
            out = re
                .replace_all(&out, regex::NoExpand(replacement))
                .into_owned();
        }
        out
    }

    /// The form responses are compared and recorded in: masked, one element per line.
    pub fn normalize(&self, xml: &str) -> String {
        pretty(&self.apply(xml))
    }
}

/// One element per line keeps fixture diffs readable.
pub fn pretty(xml: &str) -> String {
    xml.replace("><", ">\n<")
}

/// A line diff (`-` expected, `+` actual), only the lines that differ, with line numbers.
pub fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // Longest common subsequence; fixtures are small.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("-{:>4} {}\n", i + 1, a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+{:>4} {}\n", j + 1, b[j]));
            j += 1;
        }
    }
    out
}

/// What happened to one request file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Same,
    /// The masked answer differs: the diff.
    Differs(String),
    /// No expected response file (and not recording).
    Missing,
    Recorded,
    /// No HTTP answer, or a status that does not fit the body.
    Failed(String),
}

#[derive(Debug, Default)]
pub struct Summary {
    pub results: Vec<(String, Outcome)>,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.results
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Same | Outcome::Recorded))
    }

    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|(_, o)| f(o)).count()
    }

    /// `N passed, N failed` (the recorded count after it when recording).
    pub fn line(&self) -> String {
        let passed = self.count(|o| matches!(o, Outcome::Same));
        let recorded = self.count(|o| matches!(o, Outcome::Recorded));
        let failed = self.results.len() - passed - recorded;
        if recorded > 0 {
            format!("replay: {passed} passed, {failed} failed, {recorded} recorded")
        } else {
            format!("replay: {passed} passed, {failed} failed")
        }
    }
}

/// The request files of `dir`, in name order.
pub fn requests(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".request.xml"))
        .collect();
    out.sort();
    Ok(out)
}

/// POSTs a body; the HTTP status and the answer.
fn post(agent: &ureq::Agent, url: &str, body: &[u8]) -> Result<(u16, String), String> {
    let request = agent
        .post(url)
        .set("Content-Type", "text/xml; charset=utf-8")
        .set("SOAPAction", "\"\"");
    let (status, resp) = match request.send_bytes(body) {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(code, r)) => (code, r),
        Err(e) => return Err(e.to_string()),
    };
    resp.into_string()
        .map(|t| (status, t))
        .map_err(|e| e.to_string())
}

/// Replays one request file: compares (or records) its masked answer.
pub fn replay_one(
    agent: &ureq::Agent,
    url: &str,
    request: &Path,
    masks: &Masks,
    record: bool,
) -> Outcome {
    let body = match std::fs::read(request) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(format!("reading {}: {e}", request.display())),
    };
    let (status, answer) = match post(agent, url, &body) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e),
    };
    let is_fault = answer.contains(":Fault>");
    if status != if is_fault { 500 } else { 200 } {
        return Outcome::Failed(format!("HTTP status {status} does not fit the body"));
    }
    let actual = masks.normalize(&answer);
    let expected_path = expected_path(request);
    if record {
        return match std::fs::write(&expected_path, &actual) {
            Ok(()) => Outcome::Recorded,
            Err(e) => Outcome::Failed(format!("writing {}: {e}", expected_path.display())),
        };
    }
    match std::fs::read_to_string(&expected_path) {
        Err(_) => Outcome::Missing,
        Ok(expected) if expected == actual => Outcome::Same,
        Ok(expected) => Outcome::Differs(diff(&expected, &actual)),
    }
}

pub fn expected_path(request: &Path) -> PathBuf {
    let name = request.to_string_lossy();
    PathBuf::from(format!(
        "{}.response.xml",
        name.strip_suffix(".request.xml").unwrap_or(&name)
    ))
}

/// Replays every request file of `dir` against `url`.
pub fn run(dir: &Path, url: &str, masks: &Masks, record: bool) -> Result<Summary> {
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(60))
        .build();
    let files = requests(dir)?;
    if files.is_empty() {
        bail!("{} holds no *.request.xml", dir.display());
    }
    let mut summary = Summary::default();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().replace(".request.xml", ""))
            .unwrap_or_default();
        let outcome = replay_one(&agent, url, &f, masks, record);
        summary.results.push((name, outcome));
    }
    Ok(summary)
}

/// Prints one line per file (and the diff of each that differs), then the summary.
pub fn print(summary: &Summary) {
    for (name, outcome) in &summary.results {
        match outcome {
            Outcome::Same => println!("ok       {name}"),
            Outcome::Recorded => println!("recorded {name}"),
            Outcome::Missing => println!("MISSING  {name}: no {name}.response.xml"),
            Outcome::Failed(e) => println!("FAILED   {name}: {e}"),
            Outcome::Differs(d) => {
                println!("DIFFERS  {name} (- expected, + actual)");
                print!("{d}");
            }
        }
    }
    println!("{}", summary.line());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_only_well_formed_values() {
        let m = Masks::provd();
        assert!(m
            .apply("<registrationID>abc</registrationID>")
            .contains("abc"));
        assert!(m
            .apply("<registrationID>aB3dE6gH</registrationID>")
            .contains("{REGISTRATION_ID}"));
        assert!(m
            .apply("<serialNumber>VDS123</serialNumber>")
            .contains("VDS123"));
    }

    #[test]
    fn added_rules_and_files() {
        let mut m = Masks::none();
        m.add_spec(r"<serialNumber>[A-Z]{3}\d{7}</serialNumber>=<serialNumber>S</serialNumber>")
            .unwrap();
        assert_eq!(
            m.apply("<serialNumber>ABC1234567</serialNumber>"),
            "<serialNumber>S</serialNumber>"
        );
        assert!(m.add_spec("no equals sign").is_err());
        assert!(m.add("(unclosed", "x").is_err());
        let dir = std::env::temp_dir().join(format!("provd-masks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml_path = dir.join("m.toml");
        std::fs::write(
            &toml_path,
            "[[mask]]\npattern = 'id=\\d+'\nreplacement = 'id=N'\n",
        )
        .unwrap();
        let json_path = dir.join("m.json");
        std::fs::write(
            &json_path,
            r#"{"mask":[{"pattern":"t=\\d+","replacement":"t=T"}]}"#,
        )
        .unwrap();
        let mut m = Masks::none();
        m.add_file(&toml_path).unwrap();
        m.add_file(&json_path).unwrap();
        assert_eq!(m.apply("id=42 t=7"), "id=N t=T");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn diff_shows_only_changed_lines() {
        let d = diff("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(d, "-   2 b\n+   2 B\n+   4 d\n");
        assert_eq!(diff("x\ny", "x\ny"), "");
    }

    #[test]
    fn summary_counts_and_fails_on_any_mismatch() {
        let mut s = Summary::default();
        s.results.push(("a".into(), Outcome::Same));
        assert!(s.ok());
        s.results
            .push(("b".into(), Outcome::Differs("-x\n".into())));
        s.results.push(("c".into(), Outcome::Missing));
        assert!(!s.ok());
        assert_eq!(s.line(), "replay: 1 passed, 2 failed");
    }
}
