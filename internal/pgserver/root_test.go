//go:build linux

package pgserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Under root, without a postgres user, the server runs as nobody; under
// another user, as that user.
func TestStart_AsNobodyWithoutAPostgresUser(t *testing.T) {
	old := serverUsers
	serverUsers = []string{"no-such-user-here", "nobody"}
	t.Cleanup(func() { serverUsers = old })
	root, err := MkdirTemp("pgserver-test-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	s, err := Start(context.Background(), Options{Dir: filepath.Join(root, "data")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	want := os.Geteuid()
	if want == 0 {
		want = s.acct.uid
		if s.acct.name != "nobody" {
			t.Errorf("runs as %s, want nobody", s.acct.name)
		}
	}
	st, err := os.Stat(fmt.Sprintf("/proc/%d", s.PID()))
	if err != nil {
		t.Fatal(err)
	}
	if uid := int(st.Sys().(*syscall.Stat_t).Uid); uid != want || uid == 0 {
		t.Errorf("the postmaster runs as uid %d, want %d", uid, want)
	}
}

// Under root, a data directory the server's user cannot reach (t.TempDir
// is root's, mode 0700) is refused, naming the directory in the way.
func TestStart_UnreachableDirUnderRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Start(context.Background(), Options{Dir: dir})
	if os.Geteuid() != 0 {
		if err != nil {
			t.Fatalf("Start as uid %d = %v", os.Geteuid(), err)
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		return
	}
	if err == nil {
		_ = s.Stop(context.Background())
		t.Fatal("Start under root succeeded on a directory under t.TempDir")
	}
	if !strings.Contains(err.Error(), "cannot reach "+dir) || !strings.Contains(err.Error(), "chmod o+x") {
		t.Errorf("Start = %v, want it to say who cannot reach what", err)
	}
}
