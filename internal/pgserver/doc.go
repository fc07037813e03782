// Package pgserver runs a real PostgreSQL server as a child process, for
// tests (modules/pgmod/pgtest) and for the AppHost (devhost): initdb once
// on a data directory, then postgres on 127.0.0.1 and a port of its own.
//
// The server programs come from the system's PostgreSQL package: PG_BIN
// names their directory, else initdb is looked up on PATH, else in the
// newest /usr/lib/postgresql/<version>/bin, where Debian and Ubuntu keep
// them off PATH. Without them, FindBinaries and Start fail with
// ErrNotInstalled and the package to install. PostgreSQL 10 or later:
// Start waits, as pg_ctl does, for the postmaster to write "ready" in its
// postmaster.pid, then connects.
//
// A server listens on TCP only (no unix socket), trusts every local
// connection, and runs with fsync off: its data survives the server
// crashing, not the machine. Its superuser is User, and URL connects as
// it. PostgreSQL refuses to run as root, so a root process runs initdb
// and postgres as the postgres user (or nobody), which must then be able
// to reach the data directory: MkdirTemp makes a directory it can.
//
// Lifecycle. Start initialises the directory when it holds no cluster and
// returns once the server accepts connections. Stop is a fast shutdown
// (SIGINT: connections are closed, committed data is written out). Kill is
// a crash: the postmaster and every process it started get SIGKILL at
// once, and Kill returns when they are all gone, so nothing is left
// attached to the old shared memory. StartAgain starts a stopped or killed
// server on the same directory and port; after a Kill, the server
// recovers from its WAL and every committed transaction is there.
//
// A server never outlives its parent: on Linux the postmaster gets SIGKILL
// when the parent dies (PR_SET_PDEATHSIG), and the processes it started
// exit on their own when they see it gone. Elsewhere a parent killed with
// SIGKILL leaves the server running, and Kill reaches the postmaster's
// process group only (PostgreSQL gives each backend a session of its
// own). On Windows, Stop kills the server too: there is no SIGINT to send.
package pgserver
