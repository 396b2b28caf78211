//! Process-wide settings the daemon makes at start (INTERFACE.md section 8): the soft
//! open-files limit raised to the hard one, so that many API connections and delivery
//! sockets do not run the process out of descriptors, and a umask that keeps what the
//! daemon creates private (the data dir 0700, RocksDB's files and the key file 0600).
//!
//! Both are process-wide, so they belong to the binary's `serve`, not to `Daemon`
//! (several daemons share one test process).

use rustix::fs::Mode;
use rustix::process::{getrlimit, setrlimit, umask, Resource, Rlimit};

/// Raises the soft limit of open files to the hard limit; returns the limit in force.
pub fn raise_open_files_limit() -> std::io::Result<Option<u64>> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return Ok(limit.current);
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )?;
    Ok(getrlimit(Resource::Nofile).current)
}

/// Files and directories created from now on are readable by their owner only.
pub fn private_umask() {
    umask(Mode::from_bits_truncate(0o077));
}
