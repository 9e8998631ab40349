//! Resource limits checked against what exeunt may set in a child: a hard limit above
//! exeunt's own needs CAP_SYS_RESOURCE (which Docker does not give by default), and
//! open files never go past the kernel's `fs.nr_open`.

use crate::plan::{Limit, UNLIMITED};

/// Why `limit` cannot be set, if it cannot.
pub fn limit_problem(limit: &Limit) -> Option<String> {
    let mut own = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit.
    if unsafe { libc::getrlimit(limit.number() as _, &mut own) } != 0 {
        return Some(format!("limits.{}: {}", limit.name(), std::io::Error::last_os_error()));
    }
    let own_hard = own.rlim_max;
    let shown = |n: u64| if n == UNLIMITED { "unlimited".to_string() } else { n.to_string() };
    if limit.hard > own_hard && !may_raise_hard_limits() {
        return Some(format!(
            "limits.{}: the hard limit {} is above exeunt's own, {}, and exeunt lacks CAP_SYS_RESOURCE to raise it",
            limit.name(),
            shown(limit.hard),
            shown(own_hard)
        ));
    }
    if limit.number() == libc::RLIMIT_NOFILE as i32
        && let Some(most) = nr_open()
        && limit.hard > most
    {
        return Some(format!(
            "limits.nofile: the hard limit {} is above the kernel's fs.nr_open, {most}",
            shown(limit.hard)
        ));
    }
    None
}

/// The most open files the kernel lets any process have.
fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open").ok()?.trim().parse().ok()
}

/// Whether exeunt has CAP_SYS_RESOURCE in its effective set.
fn may_raise_hard_limits() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    const VERSION_3: u32 = 0x2008_0522;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header { version: VERSION_3, pid: 0 };
    let mut data = [Data::default(); 2];
    // SAFETY: capget reads the header and writes two Data, the version 3 layout.
    let got = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    got == 0 && data[0].effective & (1 << CAP_SYS_RESOURCE) != 0
}
