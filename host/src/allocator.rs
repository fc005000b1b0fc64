//! The plugin's allocator: the system's (`malloc`) for everything but large blocks, which are
//! mapped and unmapped directly.
//!
//! Why: glibc raises its mmap threshold to the size of each mapped block it frees (up to
//! 32 MiB). After the plugin has rendered one large chunk, the next large buffers come from the
//! arena of the thread that made them instead, and when freed their pages stay with that arena
//! (its trim threshold rose too). Every agent and worker thread that ever handled a large chunk
//! then keeps 24 to 48 MiB: scripts/soak saw the agent grow by that much with each 12 MB
//! record, and `tests/e2e/tests/alone/memory.rs` reproduces it. Mapped directly, a large block's
//! pages go back to the system when it is freed, and glibc's threshold never moves for the
//! plugin's blocks (the agent's own allocations keep glibc's behaviour: nothing global is
//! changed).

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks of at least this size are mapped: a buffer of a chunk or a rendering, never the many
/// small allocations, whose cost a system call per block would dominate.
const LARGE: usize = 1 << 20;
/// mmap returns page-aligned memory; larger alignments go to the system allocator.
const PAGE: usize = 4096;

pub struct PluginAllocator;

fn is_large(size: usize, align: usize) -> bool {
    size >= LARGE && align <= PAGE
}

/// A fresh anonymous mapping of `size` bytes (zeroed by the kernel), or null.
fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address the kernel picks touches no existing
    // memory; the result is checked for MAP_FAILED.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED { std::ptr::null_mut() } else { ptr.cast() }
}

// SAFETY: small blocks are the system allocator's, with its guarantees; large blocks are whole
// mappings of at least their size, page-aligned (which satisfies every alignment they are used
// for, see `is_large`), and are unmapped or remapped only with the size of the layout they were
// made with, which GlobalAlloc's contract guarantees on dealloc and realloc.
unsafe impl GlobalAlloc for PluginAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            map(layout.size())
        } else {
            // SAFETY: the caller's layout is passed on unchanged.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            // Anonymous mappings are zeroed.
            map(layout.size())
        } else {
            // SAFETY: as in alloc.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(layout.size(), layout.align()) {
            // SAFETY: `ptr` is a mapping made by `map` (or `realloc`) with this size.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            // SAFETY: `ptr` came from the system allocator with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (was_large, is_large_now) = (is_large(layout.size(), layout.align()), is_large(new_size, layout.align()));
        match (was_large, is_large_now) {
            // SAFETY: a system block with its layout, resized by the system allocator.
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            (true, true) => {
                // SAFETY: `ptr` is a mapping of `layout.size()` bytes; the kernel moves it if it
                // cannot grow in place, and the old range is then gone.
                let moved = unsafe { libc::mremap(ptr.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE) };
                if moved == libc::MAP_FAILED { std::ptr::null_mut() } else { moved.cast() }
            }
            _ => {
                // Across the boundary: a new block of the other kind, the bytes that fit, the old
                // block freed. SAFETY: GlobalAlloc's contract makes `new_size` a valid size for
                // this alignment.
                let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                // SAFETY: a non-zero size (realloc's contract).
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks are live and at least this long, and distinct.
                    unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
                    // SAFETY: the old block, with its layout.
                    unsafe { self.dealloc(ptr, layout) };
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn blocks_of_every_size_keep_their_bytes_across_growth_and_shrinking() {
        // Through the global allocator: below, at and above the boundary, in both directions.
        let mut bytes: Vec<u8> = Vec::new();
        for size in [10, super::LARGE - 1, super::LARGE, 3 * super::LARGE + 7, 100, 0, 5 * super::LARGE] {
            let old = bytes.len();
            bytes.resize(size, 0);
            for (i, b) in bytes.iter_mut().enumerate().skip(old) {
                *b = (i % 251) as u8;
            }
            bytes.shrink_to_fit();
            assert!(bytes.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8), "size {size}");
        }
        let zeroed = vec![0u8; 2 * super::LARGE];
        assert!(zeroed.iter().all(|b| *b == 0));
    }
}
