package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/courtbak/courtbak/repo/blob"
)

// ErrSkipDir, returned by a WalkFunc for a directory, skips its contents.
var ErrSkipDir = errors.New("skip this directory")

// WalkFunc is called for every node, with its absolute slash path in the
// snapshot.
type WalkFunc func(nodePath string, n *Node) error

// ValidName reports whether a node name is safe to use as a path element:
// a damaged or forged tree must not make restore write outside its target.
func ValidName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// TreeLoader reads a tree blob by id: the one thing the tree functions
// need from a repository.
type TreeLoader interface {
	LoadTree(ctx context.Context, id blob.ID) (*Tree, error)
}

// ErrTreeLimit means a walk through a snapshot's tree went deeper, or
// past more entries, than its limits allow.
var ErrTreeLimit = errors.New("the snapshot's tree is larger than this command accepts")

// Limits bound one walk through a snapshot's tree. Trees are shared by
// content, so a tiny damaged or forged repository can reuse one directory
// on every level of a tree and describe more entries than any walk could
// finish; real trees stay far below the defaults.
type Limits struct {
	MaxDepth   int   // directory levels below the root (--max-tree-depth)
	MaxEntries int64 // entries visited (--max-entries)
}

// DefaultLimits are generous for real trees: Linux paths are at most 4096
// bytes, so about 2000 levels, and a court's snapshot holds millions of
// files, not a hundred million.
var DefaultLimits = Limits{MaxDepth: 1000, MaxEntries: 100_000_000}

// limitSetter is a TreeLoader that sets the limits of walks through it
// (a repository opened with --max-tree-depth or --max-entries).
type limitSetter interface {
	WalkLimits() Limits
}

// LimitsOf returns the limits of walks through l: its own, with zero
// fields taking the defaults, or DefaultLimits.
func LimitsOf(l TreeLoader) Limits {
	lim := DefaultLimits
	if s, ok := l.(limitSetter); ok {
		own := s.WalkLimits()
		if own.MaxDepth > 0 {
			lim.MaxDepth = own.MaxDepth
		}
		if own.MaxEntries > 0 {
			lim.MaxEntries = own.MaxEntries
		}
	}
	return lim
}

// Budget counts one walk against its limits. Not safe for concurrent use.
type Budget struct {
	lim     Limits
	entries int64
}

// NewBudget starts counting a walk through l.
func NewBudget(l TreeLoader) *Budget { return &Budget{lim: LimitsOf(l)} }

// Tree accounts for a tree of n entries, the directory dir at depth (the
// root is 0), before any of its entries is visited.
func (b *Budget) Tree(dir string, depth, n int) error {
	if depth > b.lim.MaxDepth {
		return fmt.Errorf("%s is more than %d directories deep: %w (raise --max-tree-depth for a real tree this deep; a damaged or forged tree can reuse a directory without end)", dir, b.lim.MaxDepth, ErrTreeLimit)
	}
	b.entries += int64(n)
	if b.entries > b.lim.MaxEntries {
		return fmt.Errorf("more than %d entries by %s: %w (raise --max-entries for a real tree this large; a damaged or forged tree can reuse a directory without end)", b.lim.MaxEntries, dir, ErrTreeLimit)
	}
	return nil
}

// Walk visits the tree id depth first in name order, within the limits of
// l (LimitsOf).
func Walk(ctx context.Context, l TreeLoader, id blob.ID, fn WalkFunc) error {
	return walk(ctx, l, NewBudget(l), 0, id, "/", fn)
}

func walk(ctx context.Context, l TreeLoader, bud *Budget, depth int, id blob.ID, dir string, fn WalkFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := l.LoadTree(ctx, id)
	if err != nil {
		return fmt.Errorf("tree of %s: %w", dir, err)
	}
	if err := bud.Tree(dir, depth, len(t.Nodes)); err != nil {
		return err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i] // names were validated when the tree was decoded
		p := path.Join(dir, n.Name)
		err := fn(p, n)
		if errors.Is(err, ErrSkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == NodeDir {
			if err := walk(ctx, l, bud, depth+1, *n.Subtree, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// FindNode returns the node at an absolute slash path in the tree root.
func FindNode(ctx context.Context, l TreeLoader, root blob.ID, nodePath string) (*Node, error) {
	parts := strings.Split(strings.Trim(path.Clean("/"+nodePath), "/"), "/")
	cur := root
	for i, part := range parts {
		t, err := l.LoadTree(ctx, cur)
		if err != nil {
			return nil, err
		}
		n := t.Find(part)
		if n == nil {
			return nil, fmt.Errorf("%s: no such file or directory in the snapshot", nodePath)
		}
		if i == len(parts)-1 {
			return n, nil
		}
		if n.Type != NodeDir || n.Subtree == nil {
			return nil, fmt.Errorf("%s: %s is not a directory", nodePath, path.Join(parts[:i+1]...))
		}
		cur = *n.Subtree
	}
	return nil, fmt.Errorf("%s: not found", nodePath)
}
