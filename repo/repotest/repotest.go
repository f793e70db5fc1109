// Package repotest makes fresh repositories for the tests of any package,
// with a key derivation fast enough that a test can make hundreds.
package repotest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/mem"
	"github.com/courtbak/courtbak/repo"
)

// Password opens every repository made here.
var Password = []byte("pw")

// KDF is argon2id at its smallest accepted cost: for tests only, never for
// a real key.
var KDF = crypto.KDFParams{Time: 1, MemoryKiB: 8 << 10, Threads: 1}

// Init creates a repository on be, with Password and KDF, and returns it
// opened with opts.
func Init(tb testing.TB, be remote.Backend, opts repo.Options) *repo.Repository {
	tb.Helper()
	r, err := repo.Init(context.Background(), be, Password, repo.InitOptions{KDF: KDF}, opts)
	if err != nil {
		tb.Fatalf("init test repository at %s: %v", be.Location(), err)
	}
	return r
}

// New creates a repository in memory (remote/mem).
func New(tb testing.TB, opts repo.Options) *repo.Repository {
	tb.Helper()
	return Init(tb, mem.New(nil), opts)
}

// NewLocal creates a repository in a fresh directory, removed after the
// test, and returns it and the directory, for tests that inspect or damage
// files or run the real binary on it.
func NewLocal(tb testing.TB, opts repo.Options) (*repo.Repository, string) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "repo")
	be, err := remote.OpenLocal(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return Init(tb, be, opts), dir
}
