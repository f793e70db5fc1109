package remote_test

import (
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/backendtest"
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
