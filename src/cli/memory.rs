//! Gives the kernel back the pages of pincher's own code that only starting up needed.
//!
//! Starting `serve` touches code that never runs again (settings, migrations, the route table
//! and its OpenAPI document), and the kernel maps each touched page with its neighbours: most
//! of an idle service's resident memory is its own executable (docs/performance.md). Paging
//! those mappings out once the service is up, and again after its first requests (which run
//! lazy set-up once), leaves resident only what serving touches again.

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
}
