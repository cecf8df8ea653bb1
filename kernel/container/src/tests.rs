//! Host tests: ids, each operation's checks one by one, destruction order on random trees, then a
//! random-operation run against a simple reference model.

use super::*;
use alloc::vec;
use std::collections::HashSet;

use ContainerError::*;
use Resource::*;

const ROOT_ID: u64 = 1;

/// Deterministic xorshift64 generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn resource(&mut self) -> Resource {
        Resource::ALL[self.below(RESOURCES)]
    }
}

fn amounts(pages: u64, processes: u64, threads: u64, objects: u64, cap_slots: u64) -> Amounts {
    Amounts([pages, processes, threads, objects, cap_slots])
}

fn finite_tree() -> Tree {
    Tree::new(ROOT_ID, amounts(1000, 100, 200, 300, 400))
}

/// Indices that name no container in any tree built by these tests.
fn garbage_indices() -> Vec<Index> {
    vec![
        Index::default(),
        Index { slot: 0, generation: 0 },
        Index { slot: 0, generation: 2 },
        Index { slot: 0, generation: u32::MAX },
        Index { slot: 1, generation: 1 },
        Index { slot: 12345, generation: 7 },
        Index { slot: u32::MAX, generation: 1 },
        Index { slot: u32::MAX, generation: u32::MAX },
    ]
}

/// Every entry point given an index that names nothing: refused or ignored, nothing changed.
fn assert_dead_index(tree: &mut Tree, at: Index) {
    let root = tree.root();
    let before_len = tree.len();
    let before_usage = tree.get(root).unwrap().usage();
    assert!(tree.get(at).is_none());
    assert_eq!(tree.children(at).next(), None);
    assert_eq!(tree.own_usage(at), None);
    assert_eq!(tree.charge(at, Pages, 1), Err(NoSuchContainer));
    assert_eq!(tree.charge(at, Pages, 0), Err(NoSuchContainer));
    tree.uncharge(at, Pages, 1);
    assert_eq!(tree.alloc_pid(at), Err(NoSuchContainer));
    assert_eq!(tree.create(at, 0xdead_beef, Amounts::UNLIMITED), Err(NoSuchContainer));
    assert_eq!(tree.begin_destroy(at), Err(NoSuchContainer));
    assert_eq!(tree.remove(at), Err(NoSuchContainer));
    assert!(!tree.is_ancestor_or_self(at, root));
    assert!(!tree.is_ancestor_or_self(root, at));
    assert!(!tree.is_ancestor_or_self(at, at));
    assert_eq!(tree.len(), before_len);
    assert_eq!(tree.get(root).unwrap().usage(), before_usage);
    assert_eq!(tree.lookup(0xdead_beef), None);
}

// ---------------------------------------------------------------------------------------------
// Plain types

#[test]
fn resource_all_matches_discriminants_and_amounts_index_by_resource() {
    for (i, r) in Resource::ALL.into_iter().enumerate() {
        assert_eq!(r as usize, i);
    }
    let mut a = Amounts::ZERO;
    assert_eq!(a, Amounts::default());
    for r in Resource::ALL {
        a.set(r, 10 + r as u64);
    }
    assert_eq!(a, Amounts([10, 11, 12, 13, 14]));
    for r in Resource::ALL {
        assert_eq!(a.get(r), 10 + r as u64);
        assert_eq!(Amounts::UNLIMITED.get(r), u64::MAX);
        assert_eq!(Amounts::ZERO.get(r), 0);
    }
}

#[test]
fn display_texts() {
    assert_eq!(Pages.to_string(), "pages");
    assert_eq!(Processes.to_string(), "processes");
    assert_eq!(Threads.to_string(), "threads");
    assert_eq!(Objects.to_string(), "objects");
    assert_eq!(CapSlots.to_string(), "capability slots");
    assert_eq!(Quota(Processes).to_string(), "quota exceeded: processes");
    assert_eq!(LimitTooLarge(Pages).to_string(), "limit larger than the parent has left: pages");
    let all = [NoSuchContainer, Dying, Quota(Threads), LimitTooLarge(Objects), NotEmpty, IsRoot, TooMany, DuplicateId];
    let texts: HashSet<String> = all.iter().map(|e| e.to_string()).collect();
    assert_eq!(texts.len(), all.len(), "every error has its own text");
    assert!(texts.iter().all(|t| !t.is_empty() && t.chars().next().unwrap().is_lowercase()));
}

#[test]
fn generations_skip_zero() {
    assert_eq!(next_generation(1), 2);
    assert_eq!(next_generation(u32::MAX - 1), u32::MAX);
    assert_eq!(next_generation(u32::MAX), 1);
}

// ---------------------------------------------------------------------------------------------
// IdGenerator

#[test]
fn ids_a_million_distinct_and_non_zero() {
    let mut ids = IdGenerator::new([1, 2, 3, 4]);
    let mut all: Vec<u64> = (0..1_000_000).map(|_| ids.next()).collect();
    assert!(all.iter().all(|&id| id != 0));
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 1_000_000);
}

#[test]
fn ids_differ_between_seeds() {
    let base = [0x1111, 0x2222, 0x3333, 0x4444];
    let first: Vec<u64> = {
        let mut ids = IdGenerator::new(base);
        (0..1000).map(|_| ids.next()).collect()
    };
    // The same seed gives the same sequence.
    let mut again = IdGenerator::new(base);
    assert!(first.iter().all(|&id| again.next() == id));
    let first: HashSet<u64> = first.into_iter().collect();
    // Changing any one word (even by one bit) gives an unrelated sequence.
    for word in 0..4 {
        let mut seed = base;
        seed[word] ^= 1;
        let mut ids = IdGenerator::new(seed);
        let common = (0..1000).filter(|_| first.contains(&ids.next())).count();
        assert_eq!(common, 0, "seed word {word}");
    }
    let mut zero = IdGenerator::new([0; 4]);
    assert!((0..1000).all(|_| !first.contains(&zero.next())));
}

#[test]
fn ids_are_spread() {
    let mut ids = IdGenerator::new([0xdead, 0xbeef, 0xcafe, 0xf00d]);
    const N: u64 = 100_000;
    let mut ones = [0u64; 64];
    let mut previous = 0;
    let mut increasing = 0;
    for _ in 0..N {
        let id = ids.next();
        for (bit, count) in ones.iter_mut().enumerate() {
            *count += (id >> bit) & 1;
        }
        increasing += u64::from(id > previous);
        previous = id;
    }
    for (bit, &count) in ones.iter().enumerate() {
        assert!((N * 48 / 100..=N * 52 / 100).contains(&count), "bit {bit} set {count} times of {N}");
    }
    // Not a counter in disguise: about half of the steps go up.
    assert!((N * 48 / 100..=N * 52 / 100).contains(&increasing), "{increasing} increasing steps");
}

#[test]
fn ids_permutation_is_a_bijection_and_zero_is_skipped() {
    let ids = IdGenerator::new([9, 8, 7, 6]);
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..10_000 {
        let v = rng.next();
        assert_eq!(ids.unpermute(ids.permute(v)), v);
        assert_eq!(ids.permute(ids.unpermute(v)), v);
    }
    // Start right at the counter value that maps to 0: it is skipped.
    let zero_at = ids.unpermute(0);
    let mut skipping = IdGenerator { keys: ids.keys, counter: zero_at };
    let id = skipping.next();
    assert_ne!(id, 0);
    assert_eq!(id, ids.permute(zero_at.wrapping_add(1)));
    assert_eq!(skipping.counter, zero_at.wrapping_add(2));
    // The counter wraps without panicking.
    let mut wrapping = IdGenerator { keys: ids.keys, counter: u64::MAX };
    assert_ne!(wrapping.next(), 0);
    assert_ne!(wrapping.next(), 0);
}

// ---------------------------------------------------------------------------------------------
// Tree basics and create

#[test]
fn new_tree_holds_only_the_root() {
    let tree = Tree::new(42, amounts(1, 2, 3, 4, 5));
    let root = tree.root();
    assert_eq!(tree.len(), 1);
    assert!(!tree.is_empty());
    assert_eq!(tree.lookup(42), Some(root));
    assert_eq!(tree.lookup(1), None);
    assert_eq!(tree.lookup(0), None);
    let c = tree.get(root).unwrap();
    assert_eq!(c.id(), 42);
    assert_eq!(c.parent(), None);
    assert_eq!(c.child_count(), 0);
    assert_eq!(tree.children(root).next(), None);
    assert_eq!(c.state(), State::Alive);
    assert_eq!(c.limits(), amounts(1, 2, 3, 4, 5));
    assert_eq!(c.usage(), Amounts::ZERO);
    assert_eq!(c.depth(), 0);
    assert_eq!(tree.own_usage(root), Some(Amounts::ZERO));
    assert!(tree.is_ancestor_or_self(root, root));
    assert_ne!(root, Index::default());
}

#[test]
fn create_links_child_and_parent() {
    let mut tree = finite_tree();
    let root = tree.root();
    let a = tree.create(root, 10, amounts(10, 10, 10, 10, 10)).unwrap();
    let b = tree.create(root, 11, Amounts::UNLIMITED).unwrap();
    let aa = tree.create(a, 12, Amounts::ZERO).unwrap();
    assert_eq!(tree.len(), 4);
    assert_eq!(tree.children(root).collect::<Vec<_>>(), vec![a, b]);
    assert_eq!(tree.children(a).collect::<Vec<_>>(), vec![aa]);
    assert_eq!(tree.children(b).next(), None);
    assert_eq!(tree.get(root).unwrap().child_count(), 2);
    assert_eq!(tree.get(a).unwrap().child_count(), 1);
    assert_eq!(tree.get(aa).unwrap().child_count(), 0);
    assert_eq!(tree.get(aa).unwrap().parent(), Some(a));
    assert_eq!(tree.get(a).unwrap().parent(), Some(root));
    assert_eq!(tree.get(aa).unwrap().depth(), 2);
    assert_eq!(tree.get(aa).unwrap().id(), 12);
    assert_eq!(tree.get(aa).unwrap().state(), State::Alive);
    assert_eq!(tree.lookup(10), Some(a));
    assert_eq!(tree.lookup(11), Some(b));
    assert_eq!(tree.lookup(12), Some(aa));
    assert!(tree.is_ancestor_or_self(root, aa));
    assert!(tree.is_ancestor_or_self(a, aa));
    assert!(tree.is_ancestor_or_self(aa, aa));
    assert!(!tree.is_ancestor_or_self(aa, a));
    assert!(!tree.is_ancestor_or_self(b, aa));
    assert!(!tree.is_ancestor_or_self(aa, b));
    assert!(!tree.is_ancestor_or_self(a, root));
}

#[test]
fn create_inherits_what_the_parent_has_left() {
    let mut tree = finite_tree();
    let root = tree.root();
    tree.charge(root, Pages, 100).unwrap();
    tree.charge(root, Threads, 5).unwrap();
    let child = tree.create(root, 2, Amounts::UNLIMITED).unwrap();
    assert_eq!(tree.get(child).unwrap().limits(), amounts(900, 100, 195, 300, 400));

    // A grandchild inherits the minimum over its parent and grandparent.
    let mut request = Amounts::UNLIMITED;
    request.set(Processes, 50);
    let middle = tree.create(root, 3, request).unwrap();
    assert_eq!(tree.get(middle).unwrap().limits(), amounts(900, 50, 195, 300, 400));
    tree.charge(middle, Processes, 20).unwrap();
    tree.charge(child, Pages, 850).unwrap(); // root now has 50 pages left
    let grandchild = tree.create(middle, 4, Amounts::UNLIMITED).unwrap();
    assert_eq!(tree.get(grandchild).unwrap().limits(), amounts(50, 30, 195, 300, 400));

    // Under an unlimited root, inheriting gives u64::MAX minus usage.
    let mut open = Tree::new(1, Amounts::UNLIMITED);
    let r = open.root();
    open.charge(r, Objects, 7).unwrap();
    let c = open.create(r, 2, Amounts::UNLIMITED).unwrap();
    let mut expected = Amounts::UNLIMITED;
    expected.set(Objects, u64::MAX - 7);
    assert_eq!(open.get(c).unwrap().limits(), expected);
}

#[test]
fn create_mixes_finite_and_inherited_limits() {
    let mut tree = finite_tree();
    let root = tree.root();
    let child = tree.create(root, 2, Amounts([7, u64::MAX, 0, u64::MAX, 400])).unwrap();
    assert_eq!(tree.get(child).unwrap().limits(), Amounts([7, 100, 0, 300, 400]));
    assert_eq!(tree.charge(child, Threads, 1), Err(Quota(Threads)));
    assert_eq!(tree.charge(child, Threads, 0), Ok(()));
}

#[test]
fn create_refuses_limits_above_what_is_left() {
    let mut tree = finite_tree();
    let root = tree.root();
    // Exactly what is left is fine, one more is not.
    assert!(tree.create(root, 2, amounts(1000, 100, 200, 300, 400)).is_ok());
    assert_eq!(tree.create(root, 3, amounts(1001, 0, 0, 0, 0)), Err(LimitTooLarge(Pages)));
    assert_eq!(tree.create(root, 3, amounts(0, 0, 0, 0, 401)), Err(LimitTooLarge(CapSlots)));
    // The first offending resource is reported.
    assert_eq!(tree.create(root, 3, amounts(0, 101, 201, 0, 0)), Err(LimitTooLarge(Processes)));

    // Usage of the parent counts.
    tree.charge(root, Processes, 60).unwrap();
    assert_eq!(tree.create(root, 3, amounts(0, 41, 0, 0, 0)), Err(LimitTooLarge(Processes)));
    let child = tree.create(root, 3, amounts(500, 40, 0, 0, 0)).unwrap();

    // Usage of the grandparent counts too: the child's own limit is not enough.
    let other = tree.create(root, 4, Amounts::UNLIMITED).unwrap();
    tree.charge(other, Pages, 700).unwrap(); // root: 300 pages left, child: 500
    let len = tree.len();
    assert_eq!(tree.create(child, 5, amounts(301, 0, 0, 0, 0)), Err(LimitTooLarge(Pages)));
    assert_eq!(tree.len(), len);
    assert_eq!(tree.lookup(5), None);
    assert_eq!(tree.get(child).unwrap().child_count(), 0);
    assert_eq!(tree.children(child).next(), None);
    let grandchild = tree.create(child, 5, amounts(300, u64::MAX, 0, 0, 0)).unwrap();
    assert_eq!(tree.get(grandchild).unwrap().limits(), amounts(300, 40, 0, 0, 0));
}

#[test]
fn create_refuses_duplicate_and_zero_ids() {
    let mut tree = finite_tree();
    let root = tree.root();
    let a = tree.create(root, 2, Amounts::UNLIMITED).unwrap();
    assert_eq!(tree.create(root, 2, Amounts::UNLIMITED), Err(DuplicateId));
    assert_eq!(tree.create(a, ROOT_ID, Amounts::UNLIMITED), Err(DuplicateId));
    assert_eq!(tree.create(a, 0, Amounts::UNLIMITED), Err(DuplicateId));
    assert_eq!(tree.len(), 2);
    assert_eq!(tree.get(a).unwrap().child_count(), 0);
    assert_eq!(tree.children(a).next(), None);
    assert_eq!(tree.lookup(2), Some(a));
    // Once removed, the id is free again (the generator never repeats one anyway).
    tree.begin_destroy(a).unwrap();
    tree.remove(a).unwrap();
    let again = tree.create(root, 2, Amounts::UNLIMITED).unwrap();
    assert_ne!(again, a);
    assert_eq!(tree.lookup(2), Some(again));
}

#[test]
fn create_refuses_too_many_then_reuses_freed_slots() {
    let mut tree = Tree::new(1, Amounts::UNLIMITED);
    let root = tree.root();
    let mut last = root;
    for id in 2..=MAX_CONTAINERS as u64 {
        last = tree.create(root, id, Amounts::ZERO).unwrap();
    }
    assert_eq!(tree.len(), MAX_CONTAINERS);
    assert_eq!(tree.create(root, 1 << 40, Amounts::ZERO), Err(TooMany));
    assert_eq!(tree.create(last, 1 << 40, Amounts::ZERO), Err(TooMany));
    assert_eq!(tree.lookup(1 << 40), None);
    assert_eq!(tree.slots.len(), MAX_CONTAINERS);

    tree.begin_destroy(last).unwrap();
    tree.remove(last).unwrap();
    let reused = tree.create(root, 1 << 40, Amounts::ZERO).unwrap();
    assert_eq!(reused.slot, last.slot);
    assert_ne!(reused.generation, last.generation);
    assert_eq!(tree.slots.len(), MAX_CONTAINERS);
    assert_dead_index(&mut tree, last);
}

#[test]
fn freed_slots_are_reused_oldest_first_with_new_generations() {
    let mut tree = finite_tree();
    let root = tree.root();
    let a = tree.create(root, 2, Amounts::ZERO).unwrap();
    let b = tree.create(root, 3, Amounts::ZERO).unwrap();
    for at in [b, a] {
        tree.begin_destroy(at).unwrap();
        tree.remove(at).unwrap();
    }
    let c = tree.create(root, 4, Amounts::ZERO).unwrap();
    let d = tree.create(root, 5, Amounts::ZERO).unwrap();
    let e = tree.create(root, 6, Amounts::ZERO).unwrap();
    assert_eq!((c.slot, c.generation), (b.slot, 2));
    assert_eq!((d.slot, d.generation), (a.slot, 2));
    assert_eq!(e.generation, 1);
    assert_eq!(tree.children(root).collect::<Vec<_>>(), vec![c, d, e]);
    assert_eq!(tree.get(root).unwrap().child_count(), 3);
    for stale in [a, b] {
        assert_dead_index(&mut tree, stale);
    }
    // A slot whose generation wraps skips 0.
    tree.slots[e.slot as usize].generation = u32::MAX;
    let e = Index { slot: e.slot, generation: u32::MAX };
    tree.begin_destroy(e).unwrap();
    tree.remove(e).unwrap();
    assert_eq!(tree.slots[e.slot as usize].generation, 1);
    assert_dead_index(&mut tree, Index { slot: e.slot, generation: 0 });
}

#[test]
fn create_under_dying_or_stale_parent_is_refused() {
    let mut tree = finite_tree();
    let root = tree.root();
    let a = tree.create(root, 2, Amounts::UNLIMITED).unwrap();
    let aa = tree.create(a, 3, Amounts::UNLIMITED).unwrap();
    tree.begin_destroy(a).unwrap();
    assert_eq!(tree.create(a, 4, Amounts::UNLIMITED), Err(Dying));
    assert_eq!(tree.create(aa, 4, Amounts::UNLIMITED), Err(Dying));
    // Dying is reported before a bad id or limit.
    assert_eq!(tree.create(aa, 2, amounts(u64::MAX - 1, 0, 0, 0, 0)), Err(Dying));
    assert_eq!(tree.lookup(4), None);
    assert_eq!(tree.len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Charges

#[test]
fn charge_is_hierarchical_and_all_or_nothing() {
    let mut tree = finite_tree();
    let root = tree.root();
    let child = tree.create(root, 2, amounts(500, 10, 10, 10, 10)).unwrap();
    let grandchild = tree.create(child, 3, amounts(400, 10, 10, 10, 10)).unwrap();
    let sibling = tree.create(root, 4, Amounts::UNLIMITED).unwrap();

    tree.charge(grandchild, Pages, 300).unwrap();
    assert_eq!(tree.get(grandchild).unwrap().usage(), amounts(300, 0, 0, 0, 0));
    assert_eq!(tree.get(child).unwrap().usage(), amounts(300, 0, 0, 0, 0));
    assert_eq!(tree.get(root).unwrap().usage(), amounts(300, 0, 0, 0, 0));
    assert_eq!(tree.get(sibling).unwrap().usage(), Amounts::ZERO);
    assert_eq!(tree.own_usage(grandchild), Some(amounts(300, 0, 0, 0, 0)));
    assert_eq!(tree.own_usage(child), Some(Amounts::ZERO));
    assert_eq!(tree.own_usage(root), Some(Amounts::ZERO));

    // Over the grandchild's own limit.
    assert_eq!(tree.charge(grandchild, Pages, 101), Err(Quota(Pages)));
    // Within the grandchild's limit but over the child's once the child has its own charge.
    tree.charge(child, Pages, 150).unwrap();
    assert_eq!(tree.charge(grandchild, Pages, 51), Err(Quota(Pages)));
    // Within both but over the root's once the sibling used most of it.
    tree.charge(sibling, Pages, 501).unwrap(); // root: 951 used, 49 left
    let snapshot: Vec<(Amounts, Amounts)> = [root, child, grandchild, sibling]
        .iter()
        .map(|&i| (tree.get(i).unwrap().usage(), tree.own_usage(i).unwrap()))
        .collect();
    assert_eq!(tree.charge(grandchild, Pages, 50), Err(Quota(Pages)));
    assert_eq!(tree.charge(child, Pages, 50), Err(Quota(Pages)));
    let after: Vec<(Amounts, Amounts)> = [root, child, grandchild, sibling]
        .iter()
        .map(|&i| (tree.get(i).unwrap().usage(), tree.own_usage(i).unwrap()))
        .collect();
    assert_eq!(snapshot, after, "a refused charge changed nothing");
    tree.charge(grandchild, Pages, 49).unwrap();
    assert_eq!(tree.get(grandchild).unwrap().usage().get(Pages), 349);
    assert_eq!(tree.get(child).unwrap().usage().get(Pages), 499);
    assert_eq!(tree.get(root).unwrap().usage().get(Pages), 1000);
    assert_eq!(tree.charge(root, Pages, 1), Err(Quota(Pages)));
    assert_eq!(tree.charge(root, Pages, 0), Ok(()));
    // Other resources are independent.
    tree.charge(grandchild, Threads, 10).unwrap();

    // Uncharge restores everything.
    tree.uncharge(grandchild, Pages, 350);
    tree.uncharge(grandchild, Threads, 10);
    tree.uncharge(child, Pages, 150);
    tree.uncharge(sibling, Pages, 501);
    for at in [root, child, grandchild, sibling] {
        assert_eq!(tree.get(at).unwrap().usage(), Amounts::ZERO);
        assert_eq!(tree.own_usage(at), Some(Amounts::ZERO));
    }
}

#[test]
fn uncharge_gives_back_at_most_the_own_usage() {
    let mut tree = finite_tree();
    let root = tree.root();
    let child = tree.create(root, 2, Amounts::UNLIMITED).unwrap();
    let grandchild = tree.create(child, 3, Amounts::UNLIMITED).unwrap();
    tree.charge(grandchild, Objects, 5).unwrap();
    tree.charge(child, Objects, 2).unwrap();
    tree.charge(root, Objects, 1).unwrap();
    // The child has 7 in use, but only 2 of its own: the grandchild's 5 stay charged everywhere.
    tree.uncharge(child, Objects, 100);
    assert_eq!(tree.own_usage(child).unwrap().get(Objects), 0);
    assert_eq!(tree.get(child).unwrap().usage().get(Objects), 5);
    assert_eq!(tree.get(grandchild).unwrap().usage().get(Objects), 5);
    assert_eq!(tree.get(root).unwrap().usage().get(Objects), 6);
    tree.uncharge(child, Objects, 1);
    assert_eq!(tree.get(root).unwrap().usage().get(Objects), 6);
    tree.uncharge(grandchild, Objects, u64::MAX);
    assert_eq!(tree.get(root).unwrap().usage().get(Objects), 1);
    assert_eq!(tree.get(child).unwrap().usage().get(Objects), 0);
    tree.uncharge(root, Objects, 0);
    assert_eq!(tree.get(root).unwrap().usage().get(Objects), 1);
}

#[test]
fn charge_never_overflows() {
    let mut tree = Tree::new(1, Amounts::UNLIMITED);
    let root = tree.root();
    let child = tree.create(root, 2, Amounts::UNLIMITED).unwrap();
    tree.charge(child, Pages, u64::MAX - 1).unwrap();
    tree.charge(root, Pages, 1).unwrap();
    assert_eq!(tree.charge(child, Pages, 1), Err(Quota(Pages)));
    assert_eq!(tree.charge(root, Pages, u64::MAX), Err(Quota(Pages)));
    assert_eq!(tree.get(root).unwrap().usage().get(Pages), u64::MAX);
    assert_eq!(tree.get(child).unwrap().usage().get(Pages), u64::MAX - 1);
}

#[test]
fn fork_bomb_is_contained() {
    let mut tree = finite_tree();
    let root = tree.root();
    let mut request = Amounts::UNLIMITED;
    request.set(Processes, 32);
    let bomb = tree.create(root, 2, request).unwrap();
    let inner = tree.create(bomb, 3, Amounts::UNLIMITED).unwrap();
    for i in 0..32 {
        // Spread the forks over the container and its child: the limit is hierarchical.
        let at = if i % 2 == 0 { bomb } else { inner };
        tree.charge(at, Processes, 1).unwrap();
        assert_eq!(tree.alloc_pid(at).unwrap(), i / 2 + 1);
    }
    assert_eq!(tree.charge(bomb, Processes, 1), Err(Quota(Processes)));
    assert_eq!(tree.charge(inner, Processes, 1), Err(Quota(Processes)));
    assert_eq!(tree.get(bomb).unwrap().usage().get(Processes), 32);
    assert_eq!(tree.get(root).unwrap().usage().get(Processes), 32);
    // The rest of the system still has room.
    for _ in 0..68 {
        tree.charge(root, Processes, 1).unwrap();
    }
    assert_eq!(tree.charge(root, Processes, 1), Err(Quota(Processes)));
    // One process of the bomb exits: exactly one more fits there.
    tree.uncharge(inner, Processes, 1);
    tree.charge(bomb, Processes, 1).unwrap();
    assert_eq!(tree.charge(bomb, Processes, 1), Err(Quota(Processes)));
}

// ---------------------------------------------------------------------------------------------
// Pids

#[test]
fn pids_count_per_container_and_never_repeat() {
    let mut tree = finite_tree();
    let root = tree.root();
    let a = tree.create(root, 2, Amounts::UNLIMITED).unwrap();
    let b = tree.create(root, 3, Amounts::UNLIMITED).unwrap();
    assert_eq!(tree.alloc_pid(a), Ok(1));
    assert_eq!(tree.alloc_pid(b), Ok(1));
    assert_eq!(tree.alloc_pid(root), Ok(1));
    assert_eq!(tree.alloc_pid(a), Ok(2));
    assert_eq!(tree.alloc_pid(a), Ok(3));
    assert_eq!(tree.alloc_pid(b), Ok(2));
    let mut seen = HashSet::new();
    for expected in 4..1000 {
        let pid = tree.alloc_pid(a).unwrap();
        assert_eq!(pid, expected);
        assert!(seen.insert(pid));
    }
    // A container made in a reused slot starts from 1 again.
    tree.begin_destroy(b).unwrap();
    assert_eq!(tree.alloc_pid(b), Err(Dying));
    tree.remove(b).unwrap();
    let c = tree.create(root, 4, Amounts::UNLIMITED).unwrap();
    assert_eq!(c.slot, b.slot);
    assert_eq!(tree.alloc_pid(c), Ok(1));
    assert_eq!(tree.alloc_pid(b), Err(NoSuchContainer));
    // Exhaustion is an error, not a panic or a repeat.
    tree.slots[c.slot as usize].container.as_mut().unwrap().next_pid = u64::MAX;
    assert_eq!(tree.alloc_pid(c), Err(Quota(Processes)));
    assert_eq!(tree.alloc_pid(c), Err(Quota(Processes)));
}

// ---------------------------------------------------------------------------------------------
// Destruction

#[test]
fn root_cannot_be_destroyed_or_removed() {
    let mut tree = finite_tree();
    let root = tree.root();
    assert_eq!(tree.begin_destroy(root), Err(IsRoot));
    assert_eq!(tree.remove(root), Err(IsRoot));
    assert_eq!(tree.get(root).unwrap().state(), State::Alive);
    assert_eq!(tree.len(), 1);
    assert!(tree.charge(root, Pages, 1).is_ok());
}

#[test]
fn remove_refuses_alive_busy_or_parent_containers() {
    let mut tree = finite_tree();
    let root = tree.root();
    let a = tree.create(root, 2, Amounts::UNLIMITED).unwrap();
    let aa = tree.create(a, 3, Amounts::UNLIMITED).unwrap();
    tree.charge(aa, CapSlots, 3).unwrap();
    // Alive, even empty.
    let empty = tree.create(root, 4, Amounts::UNLIMITED).unwrap();
    assert_eq!(tree.remove(empty), Err(NotEmpty));
    assert_eq!(tree.remove(aa), Err(NotEmpty));
    tree.begin_destroy(a).unwrap();
    // Dying but has a child.
    assert_eq!(tree.remove(a), Err(NotEmpty));
    // Dying leaf with usage.
    assert_eq!(tree.remove(aa), Err(NotEmpty));
    assert_eq!(tree.len(), 4);
    tree.uncharge(aa, CapSlots, 2);
    assert_eq!(tree.remove(aa), Err(NotEmpty));
    tree.uncharge(aa, CapSlots, 1);
    assert_eq!(tree.remove(a), Err(NotEmpty));
    tree.remove(aa).unwrap();
    assert_eq!(tree.get(a).unwrap().child_count(), 0);
    assert_eq!(tree.children(a).next(), None);
    tree.remove(a).unwrap();
    assert_eq!(tree.len(), 2);
    assert_eq!(tree.children(root).collect::<Vec<_>>(), vec![empty]);
    assert_eq!(tree.get(root).unwrap().child_count(), 1);
    assert_eq!(tree.get(root).unwrap().usage(), Amounts::ZERO);
    assert_eq!(tree.remove(a), Err(NoSuchContainer));
}

#[test]
fn dying_containers_refuse_new_work_but_accept_uncharges() {
    let mut tree = finite_tree();
    let root = tree.root();
    let a = tree.create(root, 2, Amounts::UNLIMITED).unwrap();
    tree.charge(a, Threads, 4).unwrap();
    let order = tree.begin_destroy(a).unwrap();
    assert_eq!(order, vec![a]);
    assert_eq!(tree.get(a).unwrap().state(), State::Dying);
    assert_eq!(tree.lookup(2), Some(a), "dying containers are still found");
    assert_eq!(tree.charge(a, Threads, 1), Err(Dying));
    assert_eq!(tree.charge(a, Threads, 0), Err(Dying));
    assert_eq!(tree.alloc_pid(a), Err(Dying));
    assert_eq!(tree.create(a, 3, Amounts::UNLIMITED), Err(Dying));
    tree.uncharge(a, Threads, 4);
    assert_eq!(tree.get(root).unwrap().usage(), Amounts::ZERO);
    // Destroying again returns the same list.
    assert_eq!(tree.begin_destroy(a).unwrap(), vec![a]);
}

#[test]
fn a_thousand_siblings_unlink_in_place_and_keep_their_order() {
    let mut tree = Tree::new(ROOT_ID, Amounts::UNLIMITED);
    let root = tree.root();
    let mut kids: Vec<Index> = (0..1000).map(|i| tree.create(root, 2 + i, Amounts::ZERO).unwrap()).collect();
    assert_eq!(tree.get(root).unwrap().child_count(), 1000);
    assert_eq!(tree.children(root).collect::<Vec<_>>(), kids);

    // One in the middle, then the oldest and the youngest: the others keep their order.
    for position in [500, 0, 997] {
        let victim = kids.remove(position);
        assert_eq!(tree.begin_destroy(victim).unwrap(), vec![victim]);
        tree.remove(victim).unwrap();
        assert_eq!(tree.get(root).unwrap().child_count(), kids.len());
        assert_eq!(tree.children(root).collect::<Vec<_>>(), kids);
        assert_dead_index(&mut tree, victim);
        check_links(&tree, root);
    }
    // A new child goes last, into the oldest freed slot.
    let newest = tree.create(root, 5000, Amounts::ZERO).unwrap();
    kids.push(newest);
    assert_eq!(tree.children(root).collect::<Vec<_>>(), kids);
    assert_eq!(tree.get(root).unwrap().child_count(), 998);

    // Post-order below one of them, after a middle grandchild (with a child of its own) is gone.
    let parent = kids[300];
    let x = tree.create(parent, 6000, Amounts::ZERO).unwrap();
    let x1 = tree.create(x, 6001, Amounts::ZERO).unwrap();
    let y = tree.create(parent, 6002, Amounts::ZERO).unwrap();
    let y1 = tree.create(y, 6003, Amounts::ZERO).unwrap();
    let z = tree.create(parent, 6004, Amounts::ZERO).unwrap();
    let z1 = tree.create(z, 6005, Amounts::ZERO).unwrap();
    let z2 = tree.create(z, 6006, Amounts::ZERO).unwrap();
    let w = tree.create(parent, 6007, Amounts::ZERO).unwrap();
    assert_eq!(tree.begin_destroy(y).unwrap(), vec![y1, y]);
    tree.remove(y1).unwrap();
    tree.remove(y).unwrap();
    assert_eq!(tree.children(parent).collect::<Vec<_>>(), vec![x, z, w]);
    assert_eq!(tree.get(parent).unwrap().child_count(), 3);
    let order = tree.begin_destroy(parent).unwrap();
    assert_eq!(order, vec![x1, x, z1, z2, z, w, parent]);
    for c in order {
        tree.remove(c).unwrap();
    }
    kids.remove(300);
    assert_eq!(tree.children(root).collect::<Vec<_>>(), kids);
    assert_eq!(tree.get(root).unwrap().child_count(), 997);
    assert_eq!(tree.len(), 998);
    check_sums(&tree, root);
}

/// Builds a random tree under the root (depth <= 5 below the root, fan-out <= 4), charging some of
/// everything on the way. Returns the new containers in creation order.
fn random_tree(tree: &mut Tree, rng: &mut Rng, ids: &mut IdGenerator) -> Vec<Index> {
    let mut made = Vec::new();
    let mut work = vec![tree.root()];
    while let Some(parent) = work.pop() {
        if tree.get(parent).unwrap().depth() >= 5 {
            continue;
        }
        for _ in 0..rng.below(5) {
            let child = tree.create(parent, ids.next(), Amounts::UNLIMITED).unwrap();
            for r in Resource::ALL {
                tree.charge(child, r, rng.below(3) as u64).unwrap();
            }
            made.push(child);
            if rng.chance(60) {
                work.push(child);
            }
        }
    }
    made
}

#[test]
fn begin_destroy_is_post_order_on_random_trees_and_removal_restores_the_tree() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut ids = IdGenerator::new([5, 6, 7, 8]);
    for _ in 0..300 {
        let mut tree = Tree::new(ROOT_ID, Amounts::UNLIMITED);
        let root = tree.root();
        let made = random_tree(&mut tree, &mut rng, &mut ids);
        if made.is_empty() {
            continue;
        }
        let before = tree.len();
        let root_usage = tree.get(root).unwrap().usage();
        let target = made[rng.below(made.len())];
        let target_parent = tree.get(target).unwrap().parent().unwrap();
        let subtree: HashSet<Index> = made.iter().copied().filter(|&c| tree.is_ancestor_or_self(target, c)).collect();

        let order = tree.begin_destroy(target).unwrap();
        assert_eq!(order.len(), subtree.len());
        assert_eq!(order.iter().copied().collect::<HashSet<_>>(), subtree);
        assert_eq!(order.last(), Some(&target));
        for (position, &c) in order.iter().enumerate() {
            // Every descendant of c comes before it: no later entry lies under c.
            assert!(order[position + 1..].iter().all(|&later| !tree.is_ancestor_or_self(c, later) || later == c));
            // And all of its descendants are in the list before it.
            for &d in &made {
                if d != c && tree.is_ancestor_or_self(c, d) {
                    assert!(order[..position].contains(&d));
                }
            }
        }
        assert_eq!(tree.begin_destroy(target).unwrap(), order, "again: the same list");

        for &c in &made {
            let dying = subtree.contains(&c);
            assert_eq!(tree.get(c).unwrap().state(), if dying { State::Dying } else { State::Alive });
            if dying {
                assert_eq!(tree.charge(c, Pages, 1), Err(Dying));
                assert_eq!(tree.alloc_pid(c), Err(Dying));
                assert_eq!(tree.create(c, ids.next(), Amounts::UNLIMITED), Err(Dying));
            } else {
                // Outside the subtree (ancestors included) everything still works.
                tree.charge(c, Pages, 1).unwrap();
                tree.uncharge(c, Pages, 1);
            }
        }
        assert_eq!(tree.get(root).unwrap().usage(), root_usage);

        // Removal before uncharging is refused; uncharge then remove leaves first.
        let leaf = order[0];
        if tree.get(leaf).unwrap().usage() != Amounts::ZERO {
            assert_eq!(tree.remove(leaf), Err(NotEmpty));
        }
        if order.len() > 1 {
            assert_eq!(tree.remove(target), Err(NotEmpty));
        }
        let removed_ids: Vec<u64> = order.iter().map(|&c| tree.get(c).unwrap().id()).collect();
        for &c in &order {
            for r in Resource::ALL {
                tree.uncharge(c, r, u64::MAX);
            }
            tree.remove(c).unwrap();
        }
        assert_eq!(tree.len(), before - order.len());
        for &id in &removed_ids {
            assert_eq!(tree.lookup(id), None);
        }
        for &c in &order {
            assert_dead_index(&mut tree, c);
        }
        assert!(!tree.children(target_parent).any(|c| c == target));
        check_sums(&tree, root);

        // Destroying everything under the root brings the tree back to just the root.
        let children: Vec<Index> = tree.children(root).collect();
        for child in children {
            for c in tree.begin_destroy(child).unwrap() {
                for r in Resource::ALL {
                    tree.uncharge(c, r, u64::MAX);
                }
                tree.remove(c).unwrap();
            }
        }
        assert_eq!(tree.len(), 1);
        assert_eq!(tree.get(root).unwrap().usage(), Amounts::ZERO);
        assert_eq!(tree.get(root).unwrap().child_count(), 0);
        assert_eq!(tree.children(root).next(), None);
        assert_eq!(tree.by_id.len(), 1);
    }
}

#[test]
fn deep_chains_need_no_stack() {
    // A small stack: any walk that recursed per level would overflow it.
    let worker = std::thread::Builder::new().stack_size(64 * 1024).spawn(deep_chain).unwrap();
    worker.join().unwrap();
}

fn deep_chain() {
    const DEPTH: usize = 5_000;
    let mut tree = Tree::new(ROOT_ID, Amounts::UNLIMITED);
    let root = tree.root();
    let mut chain = vec![root];
    for id in 2..=DEPTH as u64 + 1 {
        let parent = *chain.last().unwrap();
        chain.push(tree.create(parent, id, Amounts::UNLIMITED).unwrap());
    }
    let bottom = *chain.last().unwrap();
    assert_eq!(tree.get(bottom).unwrap().depth(), DEPTH as u32);
    assert!(tree.is_ancestor_or_self(root, bottom));
    assert!(tree.is_ancestor_or_self(chain[1], bottom));
    assert!(!tree.is_ancestor_or_self(bottom, chain[1]));
    tree.charge(bottom, Threads, 3).unwrap();
    assert_eq!(tree.get(chain[1]).unwrap().usage().get(Threads), 3);
    let order = tree.begin_destroy(chain[1]).unwrap();
    let expected: Vec<Index> = chain[1..].iter().rev().copied().collect();
    assert_eq!(order, expected);
    tree.uncharge(bottom, Threads, 3);
    for c in order {
        tree.remove(c).unwrap();
    }
    assert_eq!(tree.len(), 1);
    drop(tree); // dropping a deep tree must not recurse either (containers hold no boxes)
}

#[test]
fn garbage_indices_never_panic() {
    let mut tree = finite_tree();
    let root = tree.root();
    let a = tree.create(root, 2, Amounts::UNLIMITED).unwrap();
    tree.charge(a, Pages, 5).unwrap();
    for at in garbage_indices() {
        if at == a {
            continue;
        }
        assert_dead_index(&mut tree, at);
    }
    // Ids that name nothing.
    for id in [0, 3, u64::MAX] {
        assert_eq!(tree.lookup(id), None);
    }
}

// ---------------------------------------------------------------------------------------------
// Random operations against a reference model

/// Checks the sibling list of `at`: ends, back links and count agree with the forward walk.
fn check_links(tree: &Tree, at: Index) {
    let c = tree.get(at).unwrap();
    let children: Vec<Index> = tree.children(at).collect();
    assert_eq!(c.child_count(), children.len());
    assert_eq!(c.first_child, children.first().copied());
    assert_eq!(c.last_child, children.last().copied());
    for (i, &child) in children.iter().enumerate() {
        let child_c = tree.get(child).unwrap();
        assert_eq!(child_c.prev_sibling, i.checked_sub(1).map(|p| children[p]));
        assert_eq!(child_c.next_sibling, children.get(i + 1).copied());
    }
    if c.parent().is_none() {
        assert_eq!((c.prev_sibling, c.next_sibling), (None, None));
    }
}

/// Checks `usage == own + sum of children's usage` and `usage <= limits` from `top` down, and
/// every sibling list on the way, using only the tree's own data.
fn check_sums(tree: &Tree, top: Index) {
    let mut work = vec![top];
    while let Some(at) = work.pop() {
        let c = tree.get(at).unwrap();
        check_links(tree, at);
        let mut sum = tree.own_usage(at).unwrap();
        for child in tree.children(at) {
            let child_c = tree.get(child).unwrap();
            assert_eq!(child_c.parent(), Some(at));
            assert_eq!(child_c.depth(), c.depth() + 1);
            if c.state() == State::Dying {
                assert_eq!(child_c.state(), State::Dying, "dying is closed downwards");
            }
            for r in Resource::ALL {
                sum.set(r, sum.get(r) + child_c.usage().get(r));
            }
            work.push(child);
        }
        assert_eq!(c.usage(), sum);
        for r in Resource::ALL {
            assert!(c.usage().get(r) <= c.limits().get(r));
        }
    }
}

struct Node {
    index: Index,
    id: u64,
    parent: Option<usize>,
    limits: Amounts,
    own: Amounts,
    dying: bool,
    removed: bool,
    next_pid: u64,
}

struct Model {
    nodes: Vec<Node>,
}

impl Model {
    fn live(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| !self.nodes[i].removed).collect()
    }

    /// Hierarchical usage of every node (children are always made after their parents).
    fn usages(&self) -> Vec<Amounts> {
        let mut usage: Vec<Amounts> =
            self.nodes.iter().map(|n| if n.removed { Amounts::ZERO } else { n.own }).collect();
        for i in (0..self.nodes.len()).rev() {
            if let (false, Some(p)) = (self.nodes[i].removed, self.nodes[i].parent) {
                for r in Resource::ALL {
                    usage[p].0[r as usize] += usage[i].get(r);
                }
            }
        }
        usage
    }

    fn ancestors_or_self(&self, mut i: usize) -> Vec<usize> {
        let mut chain = vec![i];
        while let Some(p) = self.nodes[i].parent {
            chain.push(p);
            i = p;
        }
        chain
    }

    fn children(&self, i: usize) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&c| !self.nodes[c].removed && self.nodes[c].parent == Some(i)).collect()
    }

    fn post_order(&self, i: usize, out: &mut Vec<usize>) {
        for c in self.children(i) {
            self.post_order(c, out);
        }
        out.push(i);
    }
}

fn check_against_model(tree: &Tree, model: &Model) {
    let usages = model.usages();
    let live = model.live();
    let mut children: Vec<Vec<Index>> = vec![Vec::new(); model.nodes.len()];
    let mut depths = vec![0usize; model.nodes.len()];
    for (i, node) in model.nodes.iter().enumerate() {
        if let (false, Some(p)) = (node.removed, node.parent) {
            children[p].push(node.index);
            depths[i] = depths[p] + 1;
        }
    }
    assert_eq!(tree.len(), live.len());
    assert_eq!(tree.by_id.len(), live.len());
    for (i, node) in model.nodes.iter().enumerate() {
        if node.removed {
            assert!(tree.get(node.index).is_none());
            assert_eq!(tree.lookup(node.id), None);
            continue;
        }
        let c = tree.get(node.index).unwrap();
        assert_eq!(c.id(), node.id);
        assert_eq!(tree.lookup(node.id), Some(node.index));
        assert_eq!(c.parent(), node.parent.map(|p| model.nodes[p].index));
        assert_eq!(c.state(), if node.dying { State::Dying } else { State::Alive });
        assert_eq!(c.limits(), node.limits);
        assert_eq!(c.usage(), usages[i]);
        assert_eq!(tree.own_usage(node.index), Some(node.own));
        assert_eq!(c.depth() as usize, depths[i]);
        assert_eq!(tree.children(node.index).collect::<Vec<_>>(), children[i]);
        assert_eq!(c.child_count(), children[i].len());
    }
    check_sums(tree, tree.root());
}

#[test]
fn random_operations_match_the_model() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut ids = IdGenerator::new([11, 22, 33, 44]);
    let root_limits = amounts(2000, 64, 256, 1000, 500);
    let mut tree = Tree::new(ROOT_ID, root_limits);
    let mut model = Model {
        nodes: vec![Node {
            index: tree.root(),
            id: ROOT_ID,
            parent: None,
            limits: root_limits,
            own: Amounts::ZERO,
            dying: false,
            removed: false,
            next_pid: 1,
        }],
    };
    let mut counts = [0usize; 16];
    for step in 0..20_000 {
        let live = model.live();
        let pick = live[rng.below(live.len())];
        let at = model.nodes[pick].index;
        match rng.below(100) {
            0..=14 => {
                // create
                let usages = model.usages();
                let chain = model.ancestors_or_self(pick);
                let mut left = Amounts::UNLIMITED;
                for &a in &chain {
                    for r in Resource::ALL {
                        let here = model.nodes[a].limits.get(r) - usages[a].get(r);
                        left.set(r, left.get(r).min(here));
                    }
                }
                let mut request = Amounts::UNLIMITED;
                for r in Resource::ALL {
                    if rng.chance(50) {
                        let span = left.get(r).min(10_000) + 3;
                        request.set(r, rng.next() % span);
                    }
                }
                let id = if rng.chance(5) { model.nodes[live[rng.below(live.len())]].id } else { ids.next() };
                let expected = if model.nodes[pick].dying {
                    Err(Dying)
                } else if tree.lookup(id).is_some() {
                    Err(DuplicateId)
                } else if let Some(r) =
                    Resource::ALL.into_iter().find(|&r| request.get(r) != u64::MAX && request.get(r) > left.get(r))
                {
                    Err(LimitTooLarge(r))
                } else {
                    Ok(())
                };
                let result = tree.create(at, id, request);
                assert_eq!(result.map(|_| ()), expected, "step {step}");
                if let Ok(index) = result {
                    let mut limits = request;
                    for r in Resource::ALL {
                        if request.get(r) == u64::MAX {
                            limits.set(r, left.get(r));
                        }
                    }
                    model.nodes.push(Node {
                        index,
                        id,
                        parent: Some(pick),
                        limits,
                        own: Amounts::ZERO,
                        dying: false,
                        removed: false,
                        next_pid: 1,
                    });
                    counts[0] += 1;
                } else {
                    counts[1] += 1;
                }
            }
            15..=49 => {
                // charge
                let r = rng.resource();
                let n = match rng.below(20) {
                    0 => 0,
                    1 => u64::MAX,
                    2 => rng.next() % 400,
                    _ => rng.next() % 25,
                };
                let usages = model.usages();
                let expected =
                    if model.nodes[pick].dying {
                        Err(Dying)
                    } else if model.ancestors_or_self(pick).iter().any(|&a| {
                        usages[a].get(r).checked_add(n).is_none_or(|total| total > model.nodes[a].limits.get(r))
                    }) {
                        Err(Quota(r))
                    } else {
                        Ok(())
                    };
                assert_eq!(tree.charge(at, r, n), expected, "step {step}");
                if expected.is_ok() {
                    model.nodes[pick].own.0[r as usize] += n;
                    counts[2] += 1;
                } else {
                    counts[3] += 1;
                }
            }
            50..=69 => {
                // uncharge
                let r = rng.resource();
                let n = if rng.chance(10) { u64::MAX } else { rng.next() % 30 };
                tree.uncharge(at, r, n);
                let own = &mut model.nodes[pick].own.0[r as usize];
                *own -= n.min(*own);
                counts[4] += 1;
            }
            70..=74 => {
                // alloc_pid
                let node = &mut model.nodes[pick];
                if node.dying {
                    assert_eq!(tree.alloc_pid(at), Err(Dying));
                } else {
                    assert_eq!(tree.alloc_pid(at), Ok(node.next_pid));
                    node.next_pid += 1;
                }
                counts[5] += 1;
            }
            75..=79 => {
                // begin_destroy
                if pick == 0 {
                    assert_eq!(tree.begin_destroy(at), Err(IsRoot));
                    counts[6] += 1;
                } else {
                    let mut expected = Vec::new();
                    model.post_order(pick, &mut expected);
                    let order = tree.begin_destroy(at).unwrap();
                    let expected_indices: Vec<Index> = expected.iter().map(|&i| model.nodes[i].index).collect();
                    assert_eq!(order, expected_indices, "step {step}");
                    for i in expected {
                        model.nodes[i].dying = true;
                    }
                    counts[7] += 1;
                }
            }
            80..=94 => {
                // remove, preferably a dying container, sometimes after emptying it
                let dying: Vec<usize> = live.iter().copied().filter(|&i| model.nodes[i].dying).collect();
                let victim = if !dying.is_empty() && rng.chance(90) { dying[rng.below(dying.len())] } else { pick };
                let at = model.nodes[victim].index;
                if rng.chance(50) {
                    for r in Resource::ALL {
                        tree.uncharge(at, r, u64::MAX);
                    }
                    model.nodes[victim].own = Amounts::ZERO;
                }
                let usages = model.usages();
                let expected = if victim == 0 {
                    Err(IsRoot)
                } else if !model.nodes[victim].dying
                    || !model.children(victim).is_empty()
                    || usages[victim] != Amounts::ZERO
                {
                    Err(NotEmpty)
                } else {
                    Ok(())
                };
                assert_eq!(tree.remove(at), expected, "step {step}");
                if expected.is_ok() {
                    model.nodes[victim].removed = true;
                    counts[8] += 1;
                } else {
                    counts[9] += 1;
                }
            }
            _ => {
                // stale and garbage indices, ancestry queries
                let removed: Vec<usize> = (0..model.nodes.len()).filter(|&i| model.nodes[i].removed).collect();
                if !removed.is_empty() {
                    assert_dead_index(&mut tree, model.nodes[removed[rng.below(removed.len())]].index);
                    counts[10] += 1;
                }
                let other = live[rng.below(live.len())];
                assert_eq!(
                    tree.is_ancestor_or_self(at, model.nodes[other].index),
                    model.ancestors_or_self(other).contains(&pick)
                );
            }
        }
        check_against_model(&tree, &model);
    }
    // Every kind of outcome happened often enough to mean something.
    for (kind, &count) in counts[..11].iter().enumerate() {
        assert!(count >= 50, "outcome {kind} happened only {count} times: {counts:?}");
    }
}
