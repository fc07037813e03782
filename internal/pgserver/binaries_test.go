package pgserver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBin makes dir/initdb and dir/postgres, executables that do nothing.
func fakeBin(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// Without the programs anywhere, the error wraps ErrNotInstalled and
// names the package of each system.
func TestFindBinaries_NoneInstalledSaysWhatToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("PG_BIN", "")
	old := libDirs
	libDirs = filepath.Join(t.TempDir(), "*", "bin")
	t.Cleanup(func() { libDirs = old })
	_, err := FindBinaries()
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("FindBinaries = %v, want ErrNotInstalled", err)
	}
	for _, want := range []string{"apt-get install postgresql", "brew install postgresql", "dnf install postgresql-server", "PG_BIN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}

// PG_BIN is used alone: a directory without the programs is an error,
// even when they are on PATH.
func TestFindBinaries_PGBinOverrides(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PG_BIN", dir)
	if _, err := FindBinaries(); !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("FindBinaries with an empty PG_BIN dir = %v, want ErrNotInstalled naming it", err)
	}
	fakeBin(t, dir)
	b, err := FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	if b.Initdb != filepath.Join(dir, "initdb") || b.Postgres != filepath.Join(dir, "postgres") {
		t.Errorf("FindBinaries = %+v, want the programs of %s", b, dir)
	}
}

// Off PATH, the newest version's directory wins, compared as numbers.
func TestFindBinaries_NewestLibDir(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "15", "12"} {
		fakeBin(t, filepath.Join(root, v, "bin"))
	}
	t.Setenv("PATH", t.TempDir())
	t.Setenv("PG_BIN", "")
	old := libDirs
	libDirs = filepath.Join(root, "*", "bin")
	t.Cleanup(func() { libDirs = old })
	b, err := FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "15", "bin", "initdb"); b.Initdb != want {
		t.Errorf("initdb %s, want %s", b.Initdb, want)
	}
}

// On PATH, a link to initdb leads to the directory it lives in, where its
// postgres is.
func TestFindBinaries_FollowsALinkOnPath(t *testing.T) {
	real := filepath.Join(t.TempDir(), "15", "bin")
	fakeBin(t, real)
	path := t.TempDir()
	if err := os.Symlink(filepath.Join(real, "initdb"), filepath.Join(path, "initdb")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", path)
	t.Setenv("PG_BIN", "")
	b, err := FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	if b.Postgres != filepath.Join(real, "postgres") {
		t.Errorf("postgres %s, want the one beside the real initdb in %s", b.Postgres, real)
	}
}
