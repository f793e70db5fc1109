package remote_test

import (
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/backendtest"
	"github.com/courtbak/courtbak/remote/directio"
)

func newLocal(t *testing.T) remote.Backend {
	be, err := remote.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func TestLocalBackend(t *testing.T) {
	backendtest.Run(t, newLocal)
}

// A local repository on a file system with direct I/O takes one upload at
// a time, elsewhere two; wrappers pass the answer through.
func TestLocalConnections(t *testing.T) {
	dir := t.TempDir()
	be, err := remote.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := 2
	if directio.SupportedDir(dir) {
		want = 1
	}
	wrapped := remote.NewRetry(remote.NewLimiter(be, 1000, 1000), remote.RetryPolicy{})
	for name, b := range map[string]remote.Backend{"local": be, "wrapped": wrapped} {
		if got := remote.Connections(b); got != want {
			t.Errorf("%s: Connections = %d, want %d", name, got, want)
		}
	}
}
