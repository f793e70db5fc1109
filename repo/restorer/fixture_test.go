package restorer_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/restorer"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// The fixture is a repository written by courtbak on amd64 and committed.
// Reading it on every architecture (CI runs this test under qemu on s390x,
// which is big-endian, and ppc64le) proves the format's byte order is
// explicit, and that format v1 stays readable.
const (
	fixtureRepo     = "../../testdata/fixtures/repo-v1"
	fixtureManifest = "../../testdata/fixtures/repo-v1.b3"
	fixturePassword = "courtbak-fixture"
)

func readManifest(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(fixtureManifest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("manifest line %q", sc.Text())
		}
		want[name] = sum
	}
	return want
}

type hashWriter struct {
	h interface{ Write([]byte) (int, error) }
}

func (w hashWriter) Write(p []byte) (int, error) { return w.h.Write(p) }

func TestFixtureRepositoryReadsOnThisArchitecture(t *testing.T) {
	ctx := context.Background()
	be, err := remote.OpenLocal(fixtureRepo)
	if err != nil {
		t.Fatal(err)
	}
	// Every object still hashes to its name.
	for _, typ := range remote.AllTypes {
		err := be.List(ctx, typ, func(fi remote.ObjectInfo) error {
			b, err := remote.ReadAll(ctx, be, fi.Handle)
			if err != nil {
				return err
			}
			return repo.CheckName(fi.Handle, b)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := repo.Open(ctx, be, []byte("wrong"), repo.Options{}); err == nil {
		t.Fatal("the fixture opened with a wrong password")
	}
	r, err := repo.Open(ctx, be, []byte(fixturePassword), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots: %v (%d)", err, len(snaps))
	}
	sn := snaps[0]
	if sn.Hostname != "fixture-host" || !sn.HasTag("fixture") {
		t.Errorf("snapshot host %q tags %v", sn.Hostname, sn.Tags)
	}
	want := readManifest(t)
	seen := 0
	wantTime := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC) // written on a UTC machine
	err = snapshot.Walk(ctx, r, sn.Tree, func(p string, n *snapshot.Node) error {
		rel := path.Join(path.Base(path.Dir(p)), n.Name)
		switch n.Type {
		case snapshot.NodeFile:
			h := crypto.NewHasher()
			if err := restorer.WriteContent(ctx, r, *n, hashWriter{h}, nil); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			got := fmt.Sprintf("%x", h.Sum(nil))
			if got != want[rel] || n.BLAKE3.String() != want[rel] {
				t.Errorf("%s: content %s, recorded %s, manifest %s", rel, got, n.BLAKE3, want[rel])
			}
			if !n.ModTime.Equal(wantTime) {
				t.Errorf("%s: mtime %v", rel, n.ModTime)
			}
			seen++
		case snapshot.NodeSymlink:
			if n.LinkTarget != "notes.txt" {
				t.Errorf("symlink %s -> %q", rel, n.LinkTarget)
			}
		}
		if n.Name == "notes.txt" && n.Mode.Perm() != 0o600 {
			t.Errorf("notes.txt mode %v", n.Mode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Errorf("restored %d files, manifest has %d", seen, len(want))
	}
}
