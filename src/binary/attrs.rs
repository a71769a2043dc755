//! A node's attributes: the first [`INLINE_ATTRS`] inside the node, more on the heap.

use std::fmt;
use std::ops::{Deref, DerefMut};

use super::compact::Text;
use super::node::AttrValue;

/// How many attributes a node holds without a heap allocation. One: on the traffic corpus
/// 42 % of nodes have none and 41 % exactly one (`participant jid`, `count value`), and a
/// second inline slot would grow every node by 80 bytes (to 248, past wacore-binary's 184) for
/// the 9 % that have two.
pub const INLINE_ATTRS: usize = 1;

/// A node's attributes in wire order: the first [`INLINE_ATTRS`] inside the node, more on the
/// heap. Dereferences to a slice of `(key, value)` pairs, so indexing, iteration and
/// `iter().find` read as they did on the `Vec` it replaces.
#[derive(Clone, Default)]
pub struct Attrs(AttrsRepr);

#[derive(Clone)]
enum AttrsRepr {
    Inline {
        len: u8,
        items: [(Text, AttrValue); INLINE_ATTRS],
    },
    Heap(Vec<(Text, AttrValue)>),
}

pub(super) const EMPTY_ATTR: (Text, AttrValue) = (Text::EMPTY, AttrValue::Str(Text::EMPTY));

impl Default for AttrsRepr {
    fn default() -> Self {
        AttrsRepr::Inline {
            len: 0,
            items: [EMPTY_ATTR; INLINE_ATTRS],
        }
    }
}

impl Attrs {
    /// No attributes.
    pub fn new() -> Attrs {
        Attrs::default()
    }

    /// Room for `n` attributes (on the heap only if `n` exceeds [`INLINE_ATTRS`]).
    pub fn with_capacity(n: usize) -> Attrs {
        if n <= INLINE_ATTRS {
            Attrs::default()
        } else {
            Attrs(AttrsRepr::Heap(Vec::with_capacity(n)))
        }
    }

    /// Exactly one attribute, inline.
    pub fn one(item: (Text, AttrValue)) -> Attrs {
        Attrs(AttrsRepr::Inline {
            len: 1,
            items: [item],
        })
    }

    /// Appends an attribute.
    pub fn push(&mut self, item: (Text, AttrValue)) {
        match &mut self.0 {
            AttrsRepr::Inline { len, items } if usize::from(*len) < INLINE_ATTRS => {
                items[usize::from(*len)] = item;
                *len += 1;
            }
            AttrsRepr::Inline { len, items } => {
                let mut v = Vec::with_capacity(4);
                for slot in &mut items[..usize::from(*len)] {
                    v.push(std::mem::replace(slot, EMPTY_ATTR));
                }
                v.push(item);
                self.0 = AttrsRepr::Heap(v);
            }
            AttrsRepr::Heap(v) => v.push(item),
        }
    }

    /// Keeps the attributes for which `keep` is true, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&(Text, AttrValue)) -> bool) {
        match &mut self.0 {
            AttrsRepr::Heap(v) => v.retain(keep),
            AttrsRepr::Inline { len, items } => {
                let mut kept = 0;
                for i in 0..usize::from(*len) {
                    if keep(&items[i]) {
                        items.swap(kept, i);
                        kept += 1;
                    }
                }
                for slot in &mut items[kept..usize::from(*len)] {
                    *slot = EMPTY_ATTR;
                }
                *len = kept as u8;
            }
        }
    }
}

impl Deref for Attrs {
    type Target = [(Text, AttrValue)];
    fn deref(&self) -> &Self::Target {
        match &self.0 {
            AttrsRepr::Inline { len, items } => &items[..usize::from(*len)],
            AttrsRepr::Heap(v) => v,
        }
    }
}

impl DerefMut for Attrs {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match &mut self.0 {
            AttrsRepr::Inline { len, items } => &mut items[..usize::from(*len)],
            AttrsRepr::Heap(v) => v,
        }
    }
}

impl PartialEq for Attrs {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl Eq for Attrs {}

impl fmt::Debug for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl FromIterator<(Text, AttrValue)> for Attrs {
    fn from_iter<I: IntoIterator<Item = (Text, AttrValue)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut a = Attrs::with_capacity(iter.size_hint().0);
        for item in iter {
            a.push(item);
        }
        a
    }
}

impl From<Vec<(Text, AttrValue)>> for Attrs {
    fn from(v: Vec<(Text, AttrValue)>) -> Self {
        Attrs(AttrsRepr::Heap(v))
    }
}

impl<'x> IntoIterator for &'x Attrs {
    type Item = &'x (Text, AttrValue);
    type IntoIter = std::slice::Iter<'x, (Text, AttrValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'x> IntoIterator for &'x mut Attrs {
    type Item = &'x mut (Text, AttrValue);
    type IntoIter = std::slice::IterMut<'x, (Text, AttrValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_spill_to_the_heap_and_keep_order() {
        let mut a = Attrs::new();
        for i in 0..5 {
            a.push((Text::new(&format!("k{i}")), AttrValue::from("v")));
            assert_eq!(a.len(), i + 1);
        }
        let keys: Vec<&str> = a.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["k0", "k1", "k2", "k3", "k4"]);
        a.retain(|(k, _)| k != "k1");
        assert_eq!(a.len(), 4);
        let mut b: Attrs = [("a", "1"), ("b", "2")]
            .into_iter()
            .map(|(k, v)| (Text::new(k), AttrValue::from(v)))
            .collect();
        b.retain(|(k, _)| k != "a");
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].0, "b");
        b[0].1 = "5".into();
        assert_eq!(b[0].1.as_str(), "5");
    }
}
