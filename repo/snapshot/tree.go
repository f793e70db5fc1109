package snapshot

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

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
	// Links is a file's link count when it has other names (hard links):
	// restore links the names of one inode and device within a snapshot.
	// Absent (0) in trees written before it existed.
	Links uint64 `json:"links,omitempty"`
	UID   uint32 `json:"uid"`
	GID   uint32 `json:"gid"`
	Size  uint64 `json:"size,omitempty"`
	// Content lists a file's data blobs in order.
	Content []blob.ID `json:"content,omitempty"`
	// BLAKE3 is the plain BLAKE3-256 of a file's whole content, as b3sum
	// prints it, so a restored file can be proved identical to the original.
	BLAKE3     *blob.ID `json:"blake3,omitempty"`
	LinkTarget string   `json:"link_target,omitempty"`
	Subtree    *blob.ID `json:"subtree,omitempty"`

	// JSON strings hold only UTF-8, but file names and link targets are
	// arbitrary bytes (Latin-1 names from old systems): those that are not
	// valid UTF-8 are stored exactly here, and Name/LinkTarget carry a
	// readable form for display.
	NameRaw       []byte `json:"name_raw,omitempty"`
	LinkTargetRaw []byte `json:"link_target_raw,omitempty"`
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

// EncodeTree serialises a tree with its nodes sorted by name bytes, so
// equal directories give equal blobs and deduplicate.
func EncodeTree(t *Tree) ([]byte, error) {
	sort.Slice(t.Nodes, func(i, j int) bool { return t.Nodes[i].Name < t.Nodes[j].Name })
	out := Tree{Nodes: make([]Node, len(t.Nodes))}
	for i, n := range t.Nodes {
		if i > 0 && n.Name == t.Nodes[i-1].Name {
			return nil, fmt.Errorf("tree has two entries named %q", n.Name)
		}
		if !utf8.ValidString(n.Name) {
			n.NameRaw, n.Name = []byte(n.Name), strings.ToValidUTF8(n.Name, "\uFFFD")
		}
		if !utf8.ValidString(n.LinkTarget) {
			n.LinkTargetRaw, n.LinkTarget = []byte(n.LinkTarget), strings.ToValidUTF8(n.LinkTarget, "\uFFFD")
		}
		out.Nodes[i] = n
	}
	b, err := json.Marshal(&out)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DecodeTree parses a tree blob, restores raw names, and checks what
// restore relies on: valid names, sorted and unique, so no entry can
// shadow another (a symlink and a directory of the same name).
func DecodeTree(b []byte) (*Tree, error) {
	var t Tree
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.NameRaw != nil {
			n.Name, n.NameRaw = string(n.NameRaw), nil
		}
		if n.LinkTargetRaw != nil {
			n.LinkTarget, n.LinkTargetRaw = string(n.LinkTargetRaw), nil
		}
		if !ValidName(n.Name) {
			return nil, fmt.Errorf("invalid entry name %q", n.Name)
		}
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return nil, fmt.Errorf("entries %q and %q are out of order or repeated", t.Nodes[i-1].Name, n.Name)
		}
		switch n.Type {
		case NodeFile:
			if n.BLAKE3 == nil {
				return nil, fmt.Errorf("file %q has no content hash", n.Name)
			}
		case NodeDir:
			if n.Subtree == nil {
				return nil, fmt.Errorf("directory %q has no subtree", n.Name)
			}
		case NodeSymlink:
		default:
			return nil, fmt.Errorf("entry %q has unknown type %q", n.Name, n.Type)
		}
	}
	return &t, nil
}
