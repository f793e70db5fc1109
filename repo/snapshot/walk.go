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

// Walk visits the tree id depth first in name order.
func Walk(ctx context.Context, l TreeLoader, id blob.ID, fn WalkFunc) error {
	return walk(ctx, l, id, "/", fn)
}

func walk(ctx context.Context, l TreeLoader, id blob.ID, dir string, fn WalkFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := l.LoadTree(ctx, id)
	if err != nil {
		return fmt.Errorf("tree of %s: %w", dir, err)
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
			if err := walk(ctx, l, *n.Subtree, p, fn); err != nil {
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
