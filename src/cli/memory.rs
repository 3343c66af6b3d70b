//! Gives the kernel back the pages of pincher's own code that only starting up needed.
//!
//! Starting `serve` touches code that never runs again (settings, migrations, the route table
//! and its OpenAPI document), and the kernel maps each touched page with its neighbours: most
//! of an idle service's resident memory is its own executable (docs/performance.md). Paging
//! those mappings out once the service is up, and again after its first requests (which run
//! lazy set-up once), leaves resident only what serving touches again.
//!
//! It also keeps the allocator from holding on to the peak of large blocks (AWS response
//! bodies, pages of rows) after they are freed.

/// Pages out the read-only mappings of the running executable (code and constants: clean
/// pages the kernel reads back from the file when they are next touched). Returns the bytes
/// advised; 0 where the kernel or the platform cannot do it, which changes nothing else.
pub fn page_out_code() -> usize {
    #[cfg(target_os = "linux")]
    {
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
            return 0;
        };
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return 0;
        };
        let exe = exe.to_string_lossy();
        let mut released = 0;
        for line in maps.lines() {
            let mut fields = line.split_whitespace();
            let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
                continue;
            };
            if perms.contains('w') || !line.ends_with(exe.as_ref()) {
                continue;
            }
            let Some((start, end)) = range.split_once('-') else {
                continue;
            };
            let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) else {
                continue;
            };
            let len = end.saturating_sub(start);
            // SAFETY: the range is one of this process's own file mappings, read from
            // /proc/self/maps, and the executable's mappings last as long as the process.
            // MADV_PAGEOUT changes no memory contents: it only drops clean file pages, which
            // the kernel reads back from the executable when they are touched again.
            let advised =
                unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_PAGEOUT) };
            if advised == 0 {
                released += len;
            }
        }
        released
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// Blocks of this size and larger get a mapping of their own, unmapped when freed.
pub const LARGE_BLOCK: usize = 128 * 1024;

/// Fixes glibc's mmap threshold at [`LARGE_BLOCK`]. glibc otherwise raises the threshold to
/// the size of the largest mapped block freed so far (up to 32 MiB); from then on blocks of
/// that size come from the heap, which keeps its high-water mark: an EC2 report's response
/// bodies and pages of rows left 3 MiB more resident at its peak (docs/performance.md). A
/// `MALLOC_MMAP_THRESHOLD_` in the environment is left to glibc. Call before other threads
/// start.
pub fn keep_large_blocks_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        let threshold = libc::c_int::try_from(LARGE_BLOCK).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets a parameter of glibc's allocator, which takes its own
        // lock; it touches no memory of the caller's.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, threshold);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_executables_mappings_are_advised_and_code_still_runs() {
        // Whether pages are released shows in a process of its own (tests/cli/serve.rs):
        // here other test processes map the same binary, and the kernel keeps shared pages.
        assert!(
            page_out_code() > 0,
            "no mapping of the executable was advised"
        );
        // Code paged out runs again, read back from the file.
        assert_eq!(format!("{:?}", vec![1, 2, 3]), "[1, 2, 3]");
    }

    #[cfg(target_env = "gnu")]
    #[test]
    fn a_large_block_is_still_mapped_after_a_larger_one_was_freed() {
        fn mapped_blocks() -> usize {
            // SAFETY: mallinfo2 only reads the allocator's counters.
            unsafe { libc::mallinfo2() }.hblks
        }
        fn touched(len: usize) -> Vec<u8> {
            let block = vec![1_u8; len];
            std::hint::black_box(block)
        }
        keep_large_blocks_mapped();
        // Without the fixed threshold, freeing this 8 MiB block raises it to 8 MiB…
        drop(touched(8 << 20));
        let before = mapped_blocks();
        // …and this 1 MiB block would come from the heap and stay there when freed.
        let block = touched(1 << 20);
        assert_eq!(
            mapped_blocks(),
            before + 1,
            "a block of {} bytes has a mapping of its own",
            block.len()
        );
    }
}
