//! A global allocator for a NIF library: every Rust allocation of the
//! library (a box's index of messages, a window's map, ...) comes from the VM's own
//! allocator through `enif_alloc`, so it shows in `erlang:memory()` (as
//! `system` memory) and in the VM's allocator statistics, where an operator
//! looks, instead of hiding in the C heap.
//!
//! `enif_alloc` returns memory aligned to 8 bytes. A larger alignment is met
//! by allocating `align` extra bytes, returning the first suitably aligned
//! address at least 8 bytes in, and keeping the VM's pointer in the word
//! just before it.

use std::alloc::{GlobalAlloc, Layout};
use std::ptr;

use rustler::sys::{c_void, enif_alloc, enif_free, enif_realloc};

/// Alignment `enif_alloc` guarantees.
const VM_ALIGN: usize = 8;

/// Allocates through `enif_alloc`; see the module documentation.
pub struct VmAlloc;

// SAFETY: every block comes from `enif_alloc` (directly, or with the
// over-alignment scheme above), is aligned as its layout asks, and is
// returned to `enif_free` by the matching path (chosen by the same layout).
unsafe impl GlobalAlloc for VmAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= VM_ALIGN {
            // SAFETY: any size may be asked of the VM's allocator.
            return unsafe { enif_alloc(layout.size()) }.cast();
        }
        let Some(total) = layout.size().checked_add(layout.align()) else {
            return ptr::null_mut();
        };
        // SAFETY: as above.
        let raw: *mut u8 = unsafe { enif_alloc(total) }.cast();
        if raw.is_null() {
            return raw;
        }
        // `raw` is 8-aligned, so the offset is a multiple of 8 in 8..=align:
        // room for the saved pointer, and `size` bytes left after it.
        let offset = layout.align() - (raw as usize & (layout.align() - 1));
        // SAFETY: `offset <= align`, within the `size + align` bytes allocated.
        let aligned = unsafe { raw.add(offset) };
        // SAFETY: the word before `aligned` is inside the block (offset >= 8)
        // and 8-aligned.
        unsafe { aligned.cast::<*mut u8>().sub(1).write(raw) };
        aligned
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let raw = if layout.align() <= VM_ALIGN {
            block
        } else {
            // SAFETY: `alloc` saved the VM's pointer in the word before `block`.
            unsafe { block.cast::<*mut u8>().sub(1).read() }
        };
        // SAFETY: `raw` came from `enif_alloc` and is freed once.
        unsafe { enif_free(raw.cast::<c_void>()) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= VM_ALIGN {
            // SAFETY: `block` came from `enif_alloc`; the VM keeps 8-byte alignment.
            return unsafe { enif_realloc(block.cast::<c_void>(), new_size) }.cast();
        }
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a valid, non-zero-sized layout (GlobalAlloc's contract).
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            // SAFETY: both blocks are valid for the smaller of the two sizes
            // and do not overlap; the old block is freed once.
            unsafe {
                ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
        }
        moved
    }
}
