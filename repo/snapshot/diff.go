package snapshot

import (
	"context"
	"path"
	"slices"

	"github.com/courtbak/courtbak/repo/blob"
)

// Change kinds reported by Diff.
const (
	ChangeAdded    = "added"
	ChangeRemoved  = "removed"
	ChangeModified = "changed"
)

// Change is one path that differs between two trees.
type Change struct {
	Path string
	Kind string
}

// Diff lists the paths added, removed and changed from tree a to tree b,
// in path order. Identical subtrees are skipped without being read.
func Diff(ctx context.Context, l TreeLoader, a, b blob.ID) ([]Change, error) {
	var out []Change
	err := diff(ctx, l, NewBudget(l), 0, &a, &b, "/", &out)
	return out, err
}

func diff(ctx context.Context, l TreeLoader, bud *Budget, depth int, a, b *blob.ID, dir string, out *[]Change) error {
	if a != nil && b != nil && *a == *b {
		return nil
	}
	ta, tb := &Tree{}, &Tree{}
	var err error
	if a != nil {
		if ta, err = l.LoadTree(ctx, *a); err != nil {
			return err
		}
	}
	if b != nil {
		if tb, err = l.LoadTree(ctx, *b); err != nil {
			return err
		}
	}
	if err := bud.Tree(dir, depth, len(ta.Nodes)+len(tb.Nodes)); err != nil {
		return err
	}
	names := map[string]bool{}
	for _, n := range ta.Nodes {
		names[n.Name] = true
	}
	for _, n := range tb.Nodes {
		names[n.Name] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	slices.Sort(sorted)
	for _, name := range sorted {
		p := path.Join(dir, name)
		na, nb := ta.Find(name), tb.Find(name)
		switch {
		case na == nil:
			*out = append(*out, Change{p, ChangeAdded})
			if nb.Type == NodeDir {
				if err := diff(ctx, l, bud, depth+1, nil, nb.Subtree, p, out); err != nil {
					return err
				}
			}
		case nb == nil:
			*out = append(*out, Change{p, ChangeRemoved})
			if na.Type == NodeDir {
				if err := diff(ctx, l, bud, depth+1, na.Subtree, nil, p, out); err != nil {
					return err
				}
			}
		case na.Type != nb.Type:
			*out = append(*out, Change{p, ChangeModified})
		case na.Type == NodeDir:
			if err := diff(ctx, l, bud, depth+1, na.Subtree, nb.Subtree, p, out); err != nil {
				return err
			}
		case !sameContent(na, nb):
			*out = append(*out, Change{p, ChangeModified})
		}
	}
	return nil
}

func sameContent(a, b *Node) bool {
	if a.Type == NodeSymlink {
		return a.LinkTarget == b.LinkTarget && a.Mode == b.Mode
	}
	return a.Size == b.Size && a.Mode == b.Mode && slices.Equal(a.Content, b.Content)
}
