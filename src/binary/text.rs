//! The readable text form for logs and the inspector: XML-like, one line, binary content as
//! hex, long payloads abbreviated (`{:#}` indents children on their own lines).

use std::fmt::{self, Display, Write as _};

use super::decode::{ContentRef, NodeRef};
use super::node::{AttrValue, Content, Node};

/// Binary content longer than this is shown as its first bytes and its length.
const SHOW_BYTES: usize = 64;

/// What the printer needs from a node, so owned and borrowed nodes print the same way.
trait Printable {
    fn write_open(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    fn write_tag(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    fn body(&self) -> Body<'_, Self>
    where
        Self: Sized;
}

enum Body<'x, N> {
    None,
    Bytes(&'x [u8]),
    Text(String),
    Children(Vec<N>),
}

fn escaped(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '"' => f.write_str("&quot;")?,
            '<' => f.write_str("&lt;")?,
            '>' => f.write_str("&gt;")?,
            '&' => f.write_str("&amp;")?,
            c if c.is_control() => write!(f, "&#x{:x};", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    Ok(())
}

fn hex_abbrev(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    let shown = &b[..b.len().min(SHOW_BYTES)];
    f.write_char('[')?;
    for x in shown {
        write!(f, "{x:02x}")?;
    }
    if b.len() > SHOW_BYTES {
        write!(f, "… {} bytes", b.len())?;
    }
    f.write_char(']')
}

fn print<N: Printable>(n: &N, f: &mut fmt::Formatter<'_>, indent: usize) -> fmt::Result {
    let pretty = f.alternate();
    if pretty {
        for _ in 0..indent {
            f.write_str("  ")?;
        }
    }
    f.write_char('<')?;
    n.write_open(f)?;
    match n.body() {
        Body::None => return f.write_str("/>"),
        Body::Bytes(b) => {
            f.write_char('>')?;
            hex_abbrev(f, b)?;
        }
        Body::Text(t) => {
            f.write_char('>')?;
            escaped(f, &t)?;
        }
        Body::Children(c) => {
            f.write_char('>')?;
            for child in &c {
                if pretty {
                    f.write_char('\n')?;
                }
                print(child, f, indent + 1)?;
            }
            if pretty && !c.is_empty() {
                f.write_char('\n')?;
                for _ in 0..indent {
                    f.write_str("  ")?;
                }
            }
        }
    }
    f.write_str("</")?;
    n.write_tag(f)?;
    f.write_char('>')
}

impl Printable for NodeRef<'_, '_> {
    fn write_tag(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Display::fmt(&self.tag(), f)
    }

    fn write_open(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_tag(f)?;
        for (k, v) in self.attrs() {
            write!(f, " {k}=\"")?;
            escaped(f, &v.as_str())?;
            f.write_char('"')?;
        }
        Ok(())
    }

    fn body(&self) -> Body<'_, Self> {
        match self.content() {
            ContentRef::None => Body::None,
            ContentRef::Bytes(b) => Body::Bytes(b),
            ContentRef::Value(v) => Body::Text(v.as_str().into_owned()),
            ContentRef::Nodes(c) => Body::Children(c.collect()),
        }
    }
}

impl Printable for &Node {
    fn write_tag(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag)
    }

    fn write_open(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag)?;
        for (k, v) in &self.attrs {
            write!(f, " {k}=\"")?;
            match v {
                AttrValue::Str(s) => escaped(f, s)?,
                AttrValue::Jid(j) => escaped(f, &j.to_string())?,
            }
            f.write_char('"')?;
        }
        Ok(())
    }

    fn body(&self) -> Body<'_, Self> {
        match &self.content {
            Content::None => Body::None,
            Content::Bytes(b) => Body::Bytes(b),
            Content::Str(s) => Body::Text(s.to_string()),
            Content::Jid(j) => Body::Text(j.to_string()),
            Content::Nodes(c) => Body::Children(c.iter().collect()),
        }
    }
}

impl Display for NodeRef<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        print(self, f, 0)
    }
}

impl fmt::Debug for NodeRef<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        print(self, f, 0)
    }
}

impl Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        print(&self, f, 0)
    }
}
