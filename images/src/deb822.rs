//! The deb822 control-file format (Debian Policy 5.1): stanzas of `Field: value`
//! lines separated by blank lines, values continued on lines that start with
//! whitespace. Used by Packages indexes, Release files and apt `.sources` files.

use crate::error::{Error, Result};

/// One stanza; field values borrow from the parsed text.
#[derive(Debug, Clone, Default)]
pub struct Stanza<'a> {
    pub fields: Vec<(&'a str, &'a str)>,
    /// 1-based line of the stanza's first field.
    pub line: usize,
}

impl<'a> Stanza<'a> {
    /// The value of a field; names compare case-insensitively (Policy 5.1).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Calls `f` for each stanza of `text`, in order. `what` names the input in errors.
pub fn for_each<'a>(
    text: &'a str,
    what: &str,
    mut f: impl FnMut(Stanza<'a>) -> Result<()>,
) -> Result<()> {
    let mut cur = Stanza::default();
    // The open field: name and the byte range of its value so far.
    let mut open: Option<(&'a str, usize, usize)> = None;
    let mut offset = 0usize;
    for (idx, raw) in text.split_inclusive('\n').enumerate() {
        let lineno = idx + 1;
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let end = start + line.len();
        if line.trim().is_empty() {
            if let Some((n, s, e)) = open.take() {
                cur.fields.push((n, text[s..e].trim()));
            }
            if !cur.fields.is_empty() {
                f(std::mem::take(&mut cur))?;
            }
            continue;
        }
        if line.starts_with('#') && open.is_none() && cur.fields.is_empty() {
            continue; // comment between stanzas (allowed in apt sources files)
        }
        if line.starts_with('#') {
            continue; // comment inside a stanza
        }
        if line.starts_with([' ', '\t']) {
            match open.as_mut() {
                Some((_, _, e)) => *e = end,
                None => {
                    return Err(Error::parse(
                        what,
                        lineno,
                        "continuation line outside a field",
                    ))
                }
            }
            continue;
        }
        let Some(colon) = line.find(':') else {
            return Err(Error::parse(what, lineno, "line has no ':'"));
        };
        let name = &line[..colon];
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(Error::parse(what, lineno, "bad field name"));
        }
        if let Some((n, s, e)) = open.take() {
            cur.fields.push((n, text[s..e].trim()));
        }
        if cur.fields.is_empty() {
            cur.line = lineno;
        }
        open = Some((name, start + colon + 1, end));
    }
    if let Some((n, s, e)) = open.take() {
        cur.fields.push((n, text[s..e].trim()));
    }
    if !cur.fields.is_empty() {
        f(cur)?;
    }
    Ok(())
}

/// All stanzas of `text`.
pub fn parse<'a>(text: &'a str, what: &str) -> Result<Vec<Stanza<'a>>> {
    let mut out = Vec::new();
    for_each(text, what, |s| {
        out.push(s);
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_fields_and_continuations() {
        let text = "Package: a\nVersion: 1\nDescription: short\n long line\n .\n more\n\n\n\
                    package: b\r\nDepends: x,\n  y\n";
        let s = parse(text, "test").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].get("package"), Some("a"));
        assert_eq!(
            s[0].get("Description"),
            Some("short\n long line\n .\n more")
        );
        assert_eq!(s[0].line, 1);
        assert_eq!(s[1].get("Package"), Some("b"));
        assert_eq!(s[1].get("depends"), Some("x,\n  y"));
        assert_eq!(s[1].line, 9);
        assert_eq!(s[1].get("Version"), None);
    }

    #[test]
    fn comments_are_skipped() {
        let s = parse("# head\nTypes: deb\n# inside\nURIs: http://x/debian\n", "t").unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].get("URIs"), Some("http://x/debian"));
    }

    #[test]
    fn corrupt_input_is_an_error() {
        assert!(matches!(
            parse(" leading continuation\n", "t"),
            Err(Error::Parse { line: 1, .. })
        ));
        assert!(matches!(
            parse("Package: a\nno colon here\n", "t"),
            Err(Error::Parse { line: 2, .. })
        ));
        assert!(parse(": empty name\n", "t").is_err());
        assert!(parse("Bad Name: x\n", "t").is_err());
        // Truncated in the middle of a value is still well-formed deb822.
        let s = parse("Package: a\nDepends: b,\n c", "t").unwrap();
        assert_eq!(s[0].get("Depends"), Some("b,\n c"));
        assert!(parse("", "t").unwrap().is_empty());
    }
}
