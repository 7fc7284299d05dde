//! A preset's header comment, read for people: its one-line summary and
//! what it says about each variable. Documentation only: which variables a
//! preset needs is read off its templates (`introspect`), never from here,
//! so a header that forgets one still lists it.

/// The comment lines at the top of a file, `#` and one space taken off.
#[derive(Debug, Default)]
pub(super) struct Header {
    lines: Vec<String>,
}

impl Header {
    /// The `#` lines before the first line that is not a comment.
    pub(super) fn read(source: &str) -> Header {
        let lines = source
            .lines()
            .map_while(|l| l.trim_start().strip_prefix('#'))
            .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end().to_string())
            .collect();
        Header { lines }
    }

    /// The header's first clause: its first paragraph up to the first `: `
    /// or `. ` (or its end), on one line.
    pub(super) fn summary(&self) -> Option<String> {
        let first: Vec<&str> =
            self.lines.iter().map(|l| l.trim()).skip_while(|l| l.is_empty()).take_while(|l| !l.is_empty()).collect();
        let text = first.join(" ");
        let cut = [": ", ". "].iter().filter_map(|sep| text.find(sep)).min().unwrap_or(text.len());
        let summary = text[..cut].trim_end_matches(['.', ':']).trim();
        (!summary.is_empty()).then(|| summary.to_string())
    }

    /// What the header says about variable `name`: the text after it on an
    /// indented line that starts with it (alone or in a list, `user, pass`),
    /// with the lines indented under it, on one line. A first column that
    /// only says `required` or repeats the default (`default`, as written
    /// in YAML) is left out.
    pub(super) fn about(&self, name: &str, default: Option<&str>) -> Option<String> {
        let at = self.lines.iter().position(|l| entry(l).is_some_and(|(_, names, _)| names.contains(&name)))?;
        let (indent, _, first) = entry(&self.lines[at])?;
        let mut words: Vec<&str> = first.split_whitespace().collect();
        for line in &self.lines[at + 1..] {
            let deeper = line.len() - line.trim_start().len() > indent;
            if !deeper || line.trim().is_empty() {
                break;
            }
            words.extend(line.split_whitespace());
        }
        let column = first.split("  ").next().map(str::trim).unwrap_or_default();
        let skip = first.contains("  ")
            && (column == "required" || column == "(empty)" || Some(column) == default || column == "optional");
        if skip {
            words.drain(..column.split_whitespace().count());
        }
        let text = words.join(" ");
        (!text.is_empty() && Some(text.as_str()) != default).then_some(text)
    }

    /// Where `name` is described, for ordering: its line and its place
    /// in that line's list, if any.
    pub(super) fn position(&self, name: &str) -> Option<(usize, usize)> {
        self.lines.iter().enumerate().find_map(|(i, l)| {
            let (_, names, _) = entry(l)?;
            names.iter().position(|n| *n == name).map(|j| (i, j))
        })
    }
}

/// An indented `NAME[, NAME…]  text` line: its indent, the names and the text.
fn entry(line: &str) -> Option<(usize, Vec<&str>, &str)> {
    let indent = line.len() - line.trim_start().len();
    if indent < 2 {
        return None;
    }
    let rest = line.trim_start();
    let (names, text) = match rest.find("  ") {
        Some(i) => (&rest[..i], rest[i..].trim_start()),
        None => (rest, ""),
    };
    let names: Vec<&str> = names.split(',').map(str::trim).collect();
    let plain = |n: &&str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    names.iter().all(plain).then_some((indent, names, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "# Yeastar P-Series OpenAPI (appliance, software and cloud editions): a login
# step trades the API client's Client ID.
#
# A branch extends this and sets:
#   host           the PBX, host[:port] (the appliance's web port, 8088 in
#                  Yeastar's examples)
#   user, pass     required  the account; keep the password in the
#                  environment: `pass: ${MY_PASS}`
# Optional:
#   scheme         https      http for a PBX without TLS
#   device         (empty)    which terminal rings
#
# Actions:
#   dial      POST /openapi/v1.0/call/dial
vars:
  scheme: https
# not the header
#   later  a line after the header
";

    #[test]
    fn the_summary_is_the_first_clause_on_one_line() {
        let h = Header::read(SOURCE);
        assert_eq!(h.summary().as_deref(), Some("Yeastar P-Series OpenAPI (appliance, software and cloud editions)"));
        let two_lines =
            Header::read("# Fanvil desk phones' Action URLs, read as\n# webdial events. A phone calls\nvars: {}\n");
        assert_eq!(two_lines.summary().as_deref(), Some("Fanvil desk phones' Action URLs, read as webdial events"));
        assert_eq!(Header::read("vars: {}\n").summary(), None);
    }

    #[test]
    fn a_variable_is_described_by_its_line_and_the_lines_under_it() {
        let h = Header::read(SOURCE);
        assert_eq!(
            h.about("host", None).as_deref(),
            Some("the PBX, host[:port] (the appliance's web port, 8088 in Yeastar's examples)")
        );
        let pass = "the account; keep the password in the environment: `pass: ${MY_PASS}`";
        assert_eq!(h.about("user", None).as_deref(), Some(pass));
        assert_eq!(h.about("pass", None).as_deref(), Some(pass));
        assert_eq!(h.about("scheme", Some("https")).as_deref(), Some("http for a PBX without TLS"));
        assert_eq!(h.about("scheme", None).as_deref(), Some("https http for a PBX without TLS"));
        assert_eq!(h.about("device", Some("")).as_deref(), Some("which terminal rings"));
        let only_default = Header::read("# x\n#   scheme   https\n");
        assert_eq!(only_default.about("scheme", Some("https")), None, "the default alone says nothing more");
        assert_eq!(h.about("later", None), None, "only the header is read");
        assert_eq!(h.about("nothing", None), None);
        assert!(h.position("host") < h.position("user") && h.position("user") < h.position("pass"));
        assert!(h.position("pass") < h.position("scheme") && h.position("nothing").is_none());
    }
}
