package snapshot

import (
	"testing"

	"github.com/courtbak/courtbak/repo/blob"
)

func FuzzDecodeTree(f *testing.F) {
	id := blob.ID{1}
	good, err := EncodeTree(&Tree{Nodes: []Node{
		{Name: "notes.txt", Type: NodeFile, Size: 3, Content: []blob.ID{id}, BLAKE3: &id},
		{Name: "M\xfcller", Type: NodeDir, Subtree: &id},
		{Name: "link", Type: NodeSymlink, LinkTarget: "notes.txt"},
	}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"nodes":[{"name":"..","type":"dir"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tree, err := DecodeTree(data)
		if err != nil {
			return
		}
		// Whatever is accepted is safe to restore: valid, sorted, unique
		// names, and re-encodes to a tree that decodes the same.
		for i, n := range tree.Nodes {
			if !ValidName(n.Name) || (i > 0 && tree.Nodes[i-1].Name >= n.Name) {
				t.Fatalf("accepted entry %q", n.Name)
			}
		}
		again, err := EncodeTree(tree)
		if err != nil {
			t.Fatalf("accepted tree does not re-encode: %v", err)
		}
		if _, err := DecodeTree(again); err != nil {
			t.Fatalf("re-encoded tree is refused: %v", err)
		}
	})
}
