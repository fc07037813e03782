package pgserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNotInstalled is returned when the PostgreSQL server programs (initdb,
// postgres) cannot be found; the error wrapping it says how to install
// them.
var ErrNotInstalled = errors.New("pgserver: PostgreSQL server programs (initdb, postgres) not found")

const installHint = "install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql; Fedora: dnf install postgresql-server; Alpine: apk add postgresql) or set PG_BIN to the directory holding initdb and postgres; make test installs it where it can"

// libDirs is where Debian and Ubuntu install the server programs, one
// directory per major version, none of them on PATH.
var libDirs = "/usr/lib/postgresql/*/bin"

// Binaries are the paths of the server programs Start runs.
type Binaries struct {
	Initdb   string
	Postgres string
}

// FindBinaries finds initdb and postgres: in the directory PG_BIN names
// when it is set, else beside the initdb on PATH, else in the newest
// /usr/lib/postgresql/<version>/bin. The error wraps ErrNotInstalled and
// says what to install.
func FindBinaries() (Binaries, error) {
	if dir := os.Getenv("PG_BIN"); dir != "" {
		b, err := binariesIn(dir)
		if err != nil {
			return Binaries{}, fmt.Errorf("%w in PG_BIN=%s (%v): %s", ErrNotInstalled, dir, err, installHint)
		}
		return b, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		// initdb runs the postgres of its own directory, symbolic links
		// resolved (Homebrew and /usr/local/bin link to the real one).
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if b, err := binariesIn(filepath.Dir(p)); err == nil {
			return b, nil
		}
	}
	for _, dir := range versionDirs() {
		if b, err := binariesIn(dir); err == nil {
			return b, nil
		}
	}
	return Binaries{}, fmt.Errorf("%w: %s", ErrNotInstalled, installHint)
}

func binariesIn(dir string) (Binaries, error) {
	initdb, err := exec.LookPath(filepath.Join(dir, "initdb"))
	if err != nil {
		return Binaries{}, err
	}
	postgres, err := exec.LookPath(filepath.Join(dir, "postgres"))
	if err != nil {
		return Binaries{}, err
	}
	return Binaries{Initdb: initdb, Postgres: postgres}, nil
}

// versionDirs returns the directories libDirs matches, the newest version
// first ("15" before "9.6").
func versionDirs() []string {
	dirs, _ := filepath.Glob(libDirs)
	version := func(dir string) []int {
		var v []int
		for _, f := range strings.Split(filepath.Base(filepath.Dir(dir)), ".") {
			n, _ := strconv.Atoi(f)
			v = append(v, n)
		}
		return v
	}
	sort.Slice(dirs, func(i, j int) bool {
		a, b := version(dirs[i]), version(dirs[j])
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] > b[k]
			}
		}
		return len(a) > len(b)
	})
	return dirs
}
