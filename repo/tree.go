package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"time"

	"github.com/courtbak/courtbak/repo/blob"
)

// Node types.
const (
	NodeFile    = "file"
	NodeDir     = "dir"
	NodeSymlink = "symlink"
)

// Node is one entry of a directory tree.
type Node struct {
	Name       string      `json:"name"`
	Type       string      `json:"type"`
	Mode       fs.FileMode `json:"mode"`
	ModTime    time.Time   `json:"mtime"`
	ChangeTime time.Time   `json:"ctime,omitzero"`
	Inode      uint64      `json:"inode,omitempty"`
	DeviceID   uint64      `json:"device,omitempty"`
	UID        uint32      `json:"uid"`
	GID        uint32      `json:"gid"`
	Size       uint64      `json:"size,omitempty"`
	// Content lists a file's data blobs in order.
	Content []blob.ID `json:"content,omitempty"`
	// BLAKE3 is the plain BLAKE3-256 of a file's whole content, as b3sum
	// prints it, so a restored file can be proved identical to the original.
	BLAKE3     *blob.ID `json:"blake3,omitempty"`
	LinkTarget string   `json:"link_target,omitempty"`
	Subtree    *blob.ID `json:"subtree,omitempty"`
}

// Tree is a directory's entries sorted by name, stored as a JSON tree blob.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// Find returns the node called name, or nil.
func (t *Tree) Find(name string) *Node {
	i := sort.Search(len(t.Nodes), func(i int) bool { return t.Nodes[i].Name >= name })
	if i < len(t.Nodes) && t.Nodes[i].Name == name {
		return &t.Nodes[i]
	}
	return nil
}

// EncodeTree serialises a tree with its nodes sorted, so equal directories
// give equal blobs and deduplicate.
func EncodeTree(t *Tree) ([]byte, error) {
	sort.Slice(t.Nodes, func(i, j int) bool { return t.Nodes[i].Name < t.Nodes[j].Name })
	for i := 1; i < len(t.Nodes); i++ {
		if t.Nodes[i].Name == t.Nodes[i-1].Name {
			return nil, fmt.Errorf("tree has two entries named %q", t.Nodes[i].Name)
		}
	}
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// LoadTree reads a tree blob.
func (r *Repository) LoadTree(ctx context.Context, id blob.ID) (*Tree, error) {
	b, err := r.LoadBlob(ctx, blob.Tree, id)
	if err != nil {
		return nil, err
	}
	var t Tree
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("decode tree %s: %v: %w", id.Short(), err, ErrDamaged)
	}
	return &t, nil
}
