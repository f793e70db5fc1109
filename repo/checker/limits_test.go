package checker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote/mem"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/checker"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// A snapshot whose tree reuses one directory twice on each of 60 levels
// (2^60 paths from 61 small trees) is reported as a damaged tree, naming
// the limit, instead of being walked without end.
func TestVerifyStopsAtTheTreeWalkLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	be := mem.New(nil)
	r := repotest.Init(t, be, repo.Options{WalkLimits: snapshot.Limits{MaxEntries: 5000}})
	s := r.NewSaver(ctx, 1)
	save := func(tr *snapshot.Tree) blob.ID {
		b, err := snapshot.EncodeTree(tr)
		if err != nil {
			t.Fatal(err)
		}
		id := r.BlobID(b)
		if _, err := s.SaveBlob(blob.Tree, id, b); err != nil {
			t.Fatal(err)
		}
		return id
	}
	id := save(&snapshot.Tree{})
	for range 60 {
		id = save(&snapshot.Tree{Nodes: []snapshot.Node{
			{Name: "a", Type: snapshot.NodeDir, Mode: 0o755, Subtree: &id},
			{Name: "b", Type: snapshot.NodeDir, Mode: 0o755, Subtree: &id},
		}})
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sn := &snapshot.Snapshot{Time: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC), Hostname: "court1", Paths: []string{"/rec"}, Tree: id}
	if err := r.SaveSnapshot(ctx, sn); err != nil {
		t.Fatal(err)
	}
	rep, err := checker.Check(ctx, checker.Target{Location: be.Location(), Backend: be}, r, nil, checker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range rep.Problems {
		found = found || p.Kind == checker.KindTreeDamaged && strings.Contains(p.Message, "--max-entries")
	}
	if !found || ctx.Err() != nil {
		t.Errorf("verify of a tree of 2^60 paths: %+v (%v)", rep.Problems, ctx.Err())
	}
}
