//! Another process (python3's sqlite3) holding an exclusive lock on a SQLite file.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// An exclusive lock on a SQLite file, held by a child process until dropped.
pub struct SqliteLock(Child);

impl SqliteLock {
    /// Takes the lock and returns once it is held.
    pub fn take(path: &std::path::Path) -> Self {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys\n\
                 c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                 c.execute('BEGIN EXCLUSIVE')\n\
                 print('locked', flush=True)\n\
                 sys.stdin.read()\n",
            ])
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed to lock the SQLite file");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line.trim(), "locked");
        Self(child)
    }
}

impl Drop for SqliteLock {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}
