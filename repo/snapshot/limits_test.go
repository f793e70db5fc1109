package snapshot

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/courtbak/courtbak/repo/blob"
)

// limitedTrees is a loader that sets the walk limits, as a repository
// opened with --max-tree-depth and --max-entries does.
type limitedTrees struct {
	*memTrees
	lim Limits
}

func (l limitedTrees) WalkLimits() Limits { return l.lim }

// addNumbered stores tr under an id made from i, for more trees than add's
// ids can tell apart.
func (m *memTrees) addNumbered(t *testing.T, i int, tr *Tree) blob.ID {
	t.Helper()
	b, err := EncodeTree(tr)
	if err != nil {
		t.Fatal(err)
	}
	id := blob.ID{0x11, byte(i), byte(i >> 8)}
	m.blobs[id] = b
	return id
}

// doubling is a tiny repository's tree that reuses one subtree twice on
// each of levels levels: 2^levels paths from levels+1 trees.
func doubling(t *testing.T, m *memTrees, levels int) blob.ID {
	id := m.addNumbered(t, 0, &Tree{Nodes: []Node{file("f", data(1))}})
	for i := 1; i <= levels; i++ {
		id = m.addNumbered(t, i, &Tree{Nodes: []Node{dir("a", id), dir("b", id)}})
	}
	return id
}

// chain is a tree levels directories deep.
func chain(t *testing.T, m *memTrees, levels int) blob.ID {
	id := m.addNumbered(t, 0, &Tree{})
	for i := 1; i <= levels; i++ {
		id = m.addNumbered(t, i, &Tree{Nodes: []Node{dir("d", id)}})
	}
	return id
}

// A walk stops with ErrTreeLimit, naming the flag that raises the limit,
// instead of running without bound through a tree that reuses a subtree
// on every level; Diff likewise.
func TestWalkAndDiffStopAtTheEntryLimit(t *testing.T) {
	m := newMemTrees()
	root := doubling(t, m, 60)
	empty := m.addNumbered(t, 1000, &Tree{})
	l := limitedTrees{m, Limits{MaxDepth: 100, MaxEntries: 5000}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	err := Walk(ctx, l, root, func(string, *Node) error { n++; return nil })
	if !errors.Is(err, ErrTreeLimit) || !strings.Contains(err.Error(), "--max-entries") {
		t.Errorf("walk of 2^61 entries: %v", err)
	}
	if n > 5000 {
		t.Errorf("%d entries visited past a limit of 5000", n)
	}
	if _, err := Diff(ctx, l, empty, root); !errors.Is(err, ErrTreeLimit) {
		t.Errorf("diff against 2^61 entries: %v", err)
	}
}

// The default depth limit stops a chain of directories one level deeper,
// naming its flag; a loader's own limits raise it.
func TestWalkStopsAtTheDepthLimit(t *testing.T) {
	m := newMemTrees()
	root := chain(t, m, DefaultLimits.MaxDepth+1)
	err := Walk(context.Background(), m, root, func(string, *Node) error { return nil })
	if !errors.Is(err, ErrTreeLimit) || !strings.Contains(err.Error(), "--max-tree-depth") {
		t.Errorf("walk %d levels deep: %v", DefaultLimits.MaxDepth+1, err)
	}
	l := limitedTrees{m, Limits{MaxDepth: DefaultLimits.MaxDepth + 1}}
	if err := Walk(context.Background(), l, root, func(string, *Node) error { return nil }); err != nil {
		t.Errorf("walk with a raised limit: %v", err)
	}
}
