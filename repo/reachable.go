package repo

import (
	"context"
	"fmt"

	"github.com/courtbak/courtbak/repo/blob"
)

// Reachable adds to seen every blob the trees reach: the trees themselves
// and their files' data blobs. A tree already in seen is not read again, so
// snapshots that share most of their directories cost little more than one.
func (r *Repository) Reachable(ctx context.Context, trees []blob.ID, seen map[blob.ID]struct{}) error {
	stack := make([]blob.ID, 0, len(trees))
	for _, id := range trees {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			stack = append(stack, id)
		}
	}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		t, err := r.LoadTree(ctx, id)
		if err != nil {
			return fmt.Errorf("tree %s: %w", id.Short(), err)
		}
		for i := range t.Nodes {
			n := &t.Nodes[i]
			for _, c := range n.Content {
				seen[c] = struct{}{}
			}
			if n.Type == NodeDir && n.Subtree != nil {
				if _, ok := seen[*n.Subtree]; !ok {
					seen[*n.Subtree] = struct{}{}
					stack = append(stack, *n.Subtree)
				}
			}
		}
	}
	return nil
}
