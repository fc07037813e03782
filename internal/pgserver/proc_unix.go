//go:build unix

package pgserver

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// serverUsers are who runs the server for root, the first that exists:
// the user the postgresql package creates, else nobody.
var serverUsers = []string{"postgres", "nobody"}

// serverAccount is the current user, unless that is root: then the first
// of serverUsers.
func serverAccount() (account, error) {
	if os.Geteuid() != 0 {
		return account{}, nil
	}
	for _, name := range serverUsers {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return account{name: name, uid: uid, gid: gid, other: true}, nil
	}
	return account{}, fmt.Errorf("pgserver: PostgreSQL refuses to run as root, and there is no postgres or nobody user to run it as: create one (useradd --system postgres)")
}

// credential switches a child to acct, with no supplementary groups.
func credential(acct account) *syscall.Credential {
	if !acct.other {
		return nil
	}
	return &syscall.Credential{Uid: uint32(acct.uid), Gid: uint32(acct.gid)}
}

// searchable reports whether acct can reach dir: dir and every directory
// above it must let it search them.
func searchable(dir string, acct account) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		perm := fi.Mode().Perm()
		ok := perm&0o001 != 0
		if st, isStat := fi.Sys().(*syscall.Stat_t); isStat {
			ok = ok || int(st.Uid) == acct.uid && perm&0o100 != 0 || int(st.Gid) == acct.gid && perm&0o010 != 0
		}
		if !ok {
			return fmt.Errorf("pgserver: PostgreSQL refuses to run as root, so it runs as user %s, who cannot reach %s: make %s searchable (chmod o+x) or put the data elsewhere (pgserver.MkdirTemp makes a directory it can reach)", acct.name, dir, d)
		}
		if filepath.Dir(d) == d {
			return nil
		}
	}
}

// interrupt asks the postmaster for a fast shutdown.
func interrupt(p *os.Process) { _ = p.Signal(syscall.SIGINT) }

// killGroup sends SIGKILL to the process group pid leads.
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
