//! Recycled tree arenas: a [`Tree`](super::Tree) takes its two vectors from this thread's spare
//! pair and gives them back when dropped, so decoding one stanza after another allocates
//! nothing once the arenas have grown to the traffic's size.
//!
//! Why: each decode made two allocations of a few kilobytes, too large for malloc's per-thread
//! cache, and malloc's slow path (`_int_malloc`, `unlink_chunk`, `_int_free`) was ~10 % of
//! decoding the traffic corpus (perf). No I/O and no clock: a thread-local spare pair only.

use std::cell::RefCell;

use super::decode::Slot;
use super::value::{Str, Value};

/// One attribute in the tree's attribute arena.
pub(super) type Attr<'a> = (Str<'a>, Value<'a>);

/// Arenas with more room than this are freed rather than kept, so one huge stanza does not
/// pin its memory for the life of the thread.
const KEEP_NODES: usize = 4096;
const KEEP_ATTRS: usize = 8192;

thread_local! {
    static SPARE: RefCell<(Vec<Slot<'static>>, Vec<Attr<'static>>)> =
        const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Empty arenas for a new tree: this thread's spare pair if it has one.
pub(super) fn take<'a>() -> (Vec<Slot<'a>>, Vec<Attr<'a>>) {
    let (nodes, attrs) = SPARE
        .try_with(|s| s.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)))
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    (relabel(nodes), relabel(attrs))
}

/// Keeps a dropped tree's arenas for the next decode on this thread.
pub(super) fn give_back(nodes: Vec<Slot<'_>>, attrs: Vec<Attr<'_>>) {
    if nodes.capacity() > KEEP_NODES || attrs.capacity() > KEEP_ATTRS {
        return;
    }
    let (nodes, attrs) = (relabel(nodes), relabel(attrs));
    let _ = SPARE.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            *s = (nodes, attrs);
        }
    });
}

/// The vector emptied, with its elements' lifetime changed and its allocation kept: collecting
/// a `vec::IntoIter` through an adapter into an element type of the same size and alignment
/// reuses the buffer, and with no elements the adapter never runs.
fn relabel<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arenas_keep_their_allocation() {
        let v: Vec<Attr<'static>> = Vec::with_capacity(100);
        let before = v.as_ptr() as usize;
        let back: Vec<Attr<'_>> = relabel(v);
        assert_eq!(back.capacity(), 100);
        assert_eq!(back.as_ptr() as usize, before);
    }

    #[test]
    fn a_second_tree_reuses_the_first_ones_arenas() {
        let frame = super::super::encode_to_vec(
            &super::super::Node::new("iq").with_children(vec![super::super::Node::new("x"); 40]),
        )
        .expect("encodes");
        let t = super::super::Tree::decode(&frame[1..]).expect("decodes");
        let cap = t.nodes.capacity();
        let ptr = t.nodes.as_ptr() as usize;
        drop(t);
        let t = super::super::Tree::decode(&frame[1..]).expect("decodes");
        assert_eq!((t.nodes.capacity(), t.nodes.as_ptr() as usize), (cap, ptr));
    }
}
