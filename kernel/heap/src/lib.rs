//! [`ClassHeap`]: the kernel heap, segregated size classes ([`SizeClasses`], which the user
//! runtime's heap uses too) in front of a linked-list heap, and [`Locked`], the same behind a
//! spin lock as a `GlobalAlloc`.
//!
//! A linked-list allocator walks its free list on every allocation and every free; with the
//! records of a thousand exited processes on that list, dropping one `Box<Endpoint>` cost about
//! 60,000 guest instructions, more than a whole interrupts-off stretch may take. Here requests
//! of up to [`MAX_CLASS`] bytes (size and alignment both) are rounded up to a power-of-two class
//! of 16 to 2048 bytes and served from that class's free list or its current slab, both in O(1).
//! Only refilling a class (one [`SLAB`]-byte slab, once per `SLAB / class` blocks) and larger or
//! more strictly aligned requests go to the linked-list heap, whose list then holds only big
//! blocks and slabs and stays short.
//!
//! Invariants:
//! - a block on a class's free list is unused, lies in a slab of that class, and holds the next
//!   block's address in its first word; the current slab's unused tail `[next, next + left)` is
//!   likewise unused, and `left` is a multiple of the class size;
//! - slabs are [`SLAB`] bytes aligned to [`SLAB`], so every block of a power-of-two class is
//!   aligned to its own size, which meets any alignment up to the class size;
//! - slabs are never returned to the linked-list heap: memory once used for a class stays in
//!   that class, free for its next requests but not for other sizes;
//! - `used` is the live bytes as callers see them: each live class block counts its class size,
//!   each big block its requested size (free blocks and unused slab space count nothing), so a
//!   leak check can compare it before and after.
#![cfg_attr(not(test), no_std)]

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use linked_list_allocator::Heap;

/// The smallest class: room for the free-list link, and the common alignment of kernel records.
pub const MIN_CLASS: usize = 16;
/// The largest class; bigger (or more strictly aligned) requests go to the linked-list heap.
pub const MAX_CLASS: usize = 2048;
/// Size and alignment of the slabs classes are carved from.
pub const SLAB: usize = 4096;
/// Layout of a slab.
const SLAB_LAYOUT: Layout = match Layout::from_size_align(SLAB, SLAB) {
    Ok(layout) => layout,
    Err(_) => panic!("SLAB is not a power of two"),
};
/// Number of classes: 16, 32, ..., 2048 bytes.
const CLASSES: usize = (MAX_CLASS / MIN_CLASS).trailing_zeros() as usize + 1;

/// The class serving `layout` (an index into `ClassHeap::classes`), or `None` for the big heap.
fn class_of(layout: Layout) -> Option<usize> {
    let need = layout.size().max(layout.align());
    if need > MAX_CLASS {
        return None;
    }
    let size = need.max(MIN_CLASS).next_power_of_two();
    Some((size.trailing_zeros() - MIN_CLASS.trailing_zeros()) as usize)
}

/// Block size of class `class`.
const fn class_size(class: usize) -> usize {
    MIN_CLASS << class
}

/// One size class: its free list and the unused tail of its current slab.
#[derive(Clone, Copy)]
struct Class {
    /// First free block (null: none); each holds the next one's address in its first word.
    free: *mut u8,
    /// Start of the current slab's unused tail (null before the first slab).
    next: *mut u8,
    /// Bytes left in the current slab's tail, a multiple of the class size.
    left: usize,
}

impl Class {
    const EMPTY: Class = Class { free: ptr::null_mut(), next: ptr::null_mut(), left: 0 };

    /// Takes a block of `size` bytes (the class size) from the free list or the slab, if either
    /// has one.
    fn take(&mut self, size: usize) -> Option<NonNull<u8>> {
        if let Some(block) = NonNull::new(self.free) {
            // SAFETY: a block on the free list is unused and holds the next block's address in
            // its first word, aligned (blocks are aligned to their class size, at least 16).
            self.free = unsafe { block.as_ptr().cast::<*mut u8>().read() };
            return Some(block);
        }
        if self.left == 0 {
            return None;
        }
        let block = NonNull::new(self.next)?;
        // Stays within the slab or one past its end: `left` is a non-zero multiple of `size`.
        self.next = self.next.wrapping_add(size);
        self.left -= size;
        Some(block)
    }

    /// Puts `block` on the free list.
    ///
    /// # Safety
    ///
    /// `block` is a block of this class that is no longer used.
    unsafe fn put(&mut self, block: NonNull<u8>) {
        // SAFETY: the block is at least `MIN_CLASS` bytes, aligned to its class size, and
        // unused (caller's promise), so its first word can hold the link.
        unsafe { block.as_ptr().cast::<*mut u8>().write(self.free) };
        self.free = block.as_ptr();
    }
}

/// The size classes alone: O(1) free lists and slab tails, taking each new slab from whatever
/// heap the owner keeps (the kernel's one region in [`ClassHeap`]; the user runtime's growing
/// regions).
pub struct SizeClasses {
    /// Free lists and slab tails, by class.
    classes: [Class; CLASSES],
    /// Live bytes of class blocks (at their class size).
    used: usize,
}

// SAFETY: the classes' pointers all point into slabs the owner handed over for good (the
// `allocate` contract), so they can move to another thread with them.
unsafe impl Send for SizeClasses {}

impl SizeClasses {
    /// No classes have blocks yet.
    pub const fn new() -> Self {
        SizeClasses { classes: [Class::EMPTY; CLASSES], used: 0 }
    }

    /// Whether `layout` is served by a class (else the owner's big heap serves it).
    pub fn serves(layout: Layout) -> bool {
        class_of(layout).is_some()
    }

    /// A block for `layout`, which [`SizeClasses::serves`]; when its class is out of blocks,
    /// `slab` is asked for a new [`SLAB`]-byte slab aligned to [`SLAB`]. `None` if `layout` is
    /// not a class layout or no slab came.
    ///
    /// # Safety
    ///
    /// A slab `slab` returns is valid, writable, used for nothing else, and stays so for as long
    /// as these classes or any block from them live.
    pub unsafe fn allocate(
        &mut self,
        layout: Layout,
        slab: impl FnOnce(Layout) -> Option<NonNull<u8>>,
    ) -> Option<NonNull<u8>> {
        let class = class_of(layout)?;
        let size = class_size(class);
        let block = match self.classes[class].take(size) {
            Some(block) => block,
            None => {
                // The class is out of blocks, so its current slab is used up: start a new one
                // with this block.
                let slab = slab(SLAB_LAYOUT)?;
                let class = &mut self.classes[class];
                class.next = slab.as_ptr().wrapping_add(size);
                class.left = SLAB - size;
                slab
            }
        };
        self.used += size;
        Some(block)
    }

    /// Frees a block of a class layout.
    ///
    /// # Safety
    ///
    /// `ptr` was returned by [`SizeClasses::allocate`] on these classes with this `layout` and
    /// has not been freed since; it is not used after this call.
    pub unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        if let Some(class) = class_of(layout) {
            // SAFETY: the same layout gives the same class, so `ptr` is an unused block of it
            // (caller's promise).
            unsafe { self.classes[class].put(ptr) };
            self.used -= class_size(class);
        }
    }

    /// Live bytes of class blocks, each at its class size.
    pub fn used(&self) -> usize {
        self.used
    }
}

impl Default for SizeClasses {
    fn default() -> Self {
        Self::new()
    }
}

/// The kernel heap; see the crate documentation.
pub struct ClassHeap {
    /// Small blocks.
    classes: SizeClasses,
    /// Big blocks and slabs.
    big: Heap,
    /// Live bytes of big blocks.
    big_used: usize,
    /// Bytes right after the big heap's end that it may still grow into.
    held: usize,
}

// SAFETY: the heap's pointers all point into the region handed to `init`, which the heap owns
// exclusively and for good (the `init` contract), so it can move to another thread with it.
unsafe impl Send for ClassHeap {}

impl ClassHeap {
    /// A heap with no memory: every allocation fails until [`ClassHeap::init`].
    pub const fn empty() -> Self {
        ClassHeap { classes: SizeClasses::new(), big: Heap::empty(), big_used: 0, held: 0 }
    }

    /// Hands the region `[base, base + size + held)` to the heap, forgetting any earlier
    /// region: it allocates from the first `size` bytes and grows into the `held` ones only
    /// when an allocation does not fit (each time by as much as it has, or what the allocation
    /// needs, if more), so its [`grown`](Self::grown) size follows what the kernel needed.
    ///
    /// # Safety
    ///
    /// The region is valid and writable, used for nothing else, and lives for as long as the
    /// heap or any block allocated from it (for the kernel heap: forever).
    ///
    /// # Panics
    ///
    /// If the first `size` bytes cannot hold the linked-list heap's bookkeeping (a few words).
    pub unsafe fn init(&mut self, base: *mut u8, size: usize, held: usize) {
        *self = Self::empty();
        // SAFETY: the caller's promise is the linked-list heap's.
        unsafe { self.big.init(base, size) };
        self.held = held;
    }

    /// Allocates a block for `layout`; `None` if the region is exhausted. O(1) for classes,
    /// except when a class takes a new slab (or the heap grows).
    pub fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        if !SizeClasses::serves(layout) {
            let block = self.big_first_fit(layout)?;
            self.big_used += layout.size();
            return Some(block);
        }
        let Self { classes, big, held, .. } = self;
        // SAFETY: slabs come from the region `init` handed over for good, and the big heap hands
        // each out once (slabs are never freed).
        unsafe { classes.allocate(layout, |slab| first_fit_growing(big, held, slab)) }
    }

    fn big_first_fit(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        first_fit_growing(&mut self.big, &mut self.held, layout)
    }

    /// Frees a block. O(1) for classes.
    ///
    /// # Safety
    ///
    /// `ptr` was returned by [`ClassHeap::allocate`] on this heap with this `layout` and has not
    /// been freed since; it is not used after this call.
    pub unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        if SizeClasses::serves(layout) {
            // SAFETY: class layouts were allocated from the classes (caller's promise).
            unsafe { self.classes.deallocate(ptr, layout) };
        } else {
            // SAFETY: big layouts were allocated from `big` with this layout, and the block is
            // unused (caller's promise).
            unsafe { self.big.deallocate(ptr, layout) };
            self.big_used -= layout.size();
        }
    }

    /// Live bytes: each live class block at its class size, each big block at its size.
    pub fn used(&self) -> usize {
        self.classes.used() + self.big_used
    }

    /// Bytes still free in the linked-list heap (not counting free class blocks).
    pub fn free_in_big_heap(&self) -> usize {
        self.big.free()
    }

    /// Bytes the heap has grown to (from `init`'s `size`).
    pub fn grown(&self) -> usize {
        self.big.size()
    }

    /// Bytes it may still grow into.
    pub fn held(&self) -> usize {
        self.held
    }
}

/// A first-fit block of `big` for `layout`; when none fits, `big` first grows into the `held`
/// bytes after its end: by its own size (doubling), or by what `layout` needs if that is more,
/// and by all that is held if less is left.
fn first_fit_growing(big: &mut Heap, held: &mut usize, layout: Layout) -> Option<NonNull<u8>> {
    if let Ok(block) = big.allocate_first_fit(layout) {
        return Some(block);
    }
    if *held == 0 {
        return None;
    }
    // Room for the block wherever its alignment puts it, and for the hole list's bookkeeping.
    let need = layout.size().saturating_add(layout.align()).saturating_add(2 * core::mem::size_of::<usize>() * 2);
    if need > big.free().saturating_add(*held) {
        return None; // would not fit even with all that is held: keep it held
    }
    let by = big.size().max(need).min(*held);
    // SAFETY: the `held` bytes lie right after the heap's end, valid and owned by the heap for
    // good (the `init` contract); `by` of them are handed over and no longer held.
    unsafe { big.extend(by) };
    *held -= by;
    big.allocate_first_fit(layout).ok()
}

/// A [`ClassHeap`] behind a spin lock, usable as the `#[global_allocator]`.
pub struct Locked(spin::Mutex<ClassHeap>);

impl Locked {
    /// A heap with no memory: every allocation fails until [`Locked::init`].
    pub const fn empty() -> Self {
        Locked(spin::Mutex::new(ClassHeap::empty()))
    }

    /// Hands the region `[base, base + size + held)` to the heap; see [`ClassHeap::init`].
    ///
    /// # Safety
    ///
    /// As for [`ClassHeap::init`]; and no block from an earlier region is still in use.
    pub unsafe fn init(&self, base: *mut u8, size: usize, held: usize) {
        // SAFETY: passed on from the caller.
        unsafe { self.0.lock().init(base, size, held) };
    }

    /// Live bytes; see [`ClassHeap::used`].
    pub fn used(&self) -> usize {
        self.0.lock().used()
    }

    /// Bytes grown to and bytes still held; see [`ClassHeap::grown`] and [`ClassHeap::held`].
    pub fn extent(&self) -> (usize, usize) {
        let heap = self.0.lock();
        (heap.grown(), heap.held())
    }
}

// SAFETY: `ClassHeap` hands out each block once until it is freed, blocks meet their layout's
// size and alignment (crate invariants), and the lock serialises all access to the heap.
unsafe impl GlobalAlloc for Locked {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.lock().allocate(layout).map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(block) = NonNull::new(ptr) {
            // SAFETY: `GlobalAlloc::dealloc`'s contract: `ptr` came from `alloc` with `layout`.
            unsafe { self.0.lock().deallocate(block, layout) };
        }
    }
}

#[cfg(test)]
mod tests;
