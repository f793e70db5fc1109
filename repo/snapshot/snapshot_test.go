package snapshot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/courtbak/courtbak/repo/blob"
)

// memTrees is a TreeLoader over trees held in memory: each tree is encoded
// and decoded as the repository would, and every read is counted.
type memTrees struct {
	mu    sync.Mutex
	blobs map[blob.ID][]byte
	reads map[blob.ID]int
	fail  map[blob.ID]error
}

func newMemTrees() *memTrees {
	return &memTrees{blobs: map[blob.ID][]byte{}, reads: map[blob.ID]int{}, fail: map[blob.ID]error{}}
}

// add stores t under the next free id and returns it.
func (m *memTrees) add(t *testing.T, tr *Tree) blob.ID {
	t.Helper()
	b, err := EncodeTree(tr)
	if err != nil {
		t.Fatal(err)
	}
	id := blob.ID{byte(len(m.blobs) + 1), 0xee}
	m.blobs[id] = b
	return id
}

func (m *memTrees) LoadTree(_ context.Context, id blob.ID) (*Tree, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads[id]++
	if err := m.fail[id]; err != nil {
		return nil, err
	}
	b, ok := m.blobs[id]
	if !ok {
		return nil, fmt.Errorf("tree %s not stored", id.Short())
	}
	return DecodeTree(b)
}

func data(n byte) blob.ID { return blob.ID{0xda, n} }

func file(name string, content ...blob.ID) Node {
	h := blob.ID{0xb3, byte(len(content))}
	return Node{Name: name, Type: NodeFile, Size: uint64(len(content)), Content: content, BLAKE3: &h}
}

func dir(name string, sub blob.ID) Node { return Node{Name: name, Type: NodeDir, Subtree: &sub} }

// sample builds /a.txt, /hearings/{x.mp4,link}, /empty/ and returns the root.
func sample(t *testing.T, m *memTrees) blob.ID {
	hearings := m.add(t, &Tree{Nodes: []Node{
		file("x.mp4", data(1), data(2)),
		{Name: "link", Type: NodeSymlink, LinkTarget: "x.mp4"},
	}})
	empty := m.add(t, &Tree{})
	return m.add(t, &Tree{Nodes: []Node{dir("hearings", hearings), file("a.txt", data(3)), dir("empty", empty)}})
}

func TestWalkVisitsInNameOrderAndSkipsDirs(t *testing.T) {
	m := newMemTrees()
	root := sample(t, m)
	var got []string
	err := Walk(context.Background(), m, root, func(p string, n *Node) error {
		got = append(got, p+":"+n.Type)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/a.txt:file", "/empty:dir", "/hearings:dir", "/hearings/link:symlink", "/hearings/x.mp4:file"}
	if !slices.Equal(got, want) {
		t.Errorf("walk order %q, want %q", got, want)
	}

	got = nil
	err = Walk(context.Background(), m, root, func(p string, n *Node) error {
		got = append(got, p)
		if p == "/hearings" {
			return ErrSkipDir
		}
		return nil
	})
	if err != nil || slices.Contains(got, "/hearings/x.mp4") {
		t.Errorf("ErrSkipDir: visited %q, err %v", got, err)
	}
}

func TestWalkReportsWhereATreeIsUnreadable(t *testing.T) {
	m := newMemTrees()
	root := sample(t, m)
	hearings := *m.mustFind(t, root, "hearings").Subtree
	m.fail[hearings] = errors.New("pack gone")
	err := Walk(context.Background(), m, root, func(string, *Node) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "/hearings") || !strings.Contains(err.Error(), "pack gone") {
		t.Errorf("walk over an unreadable subtree: %v", err)
	}
}

func (m *memTrees) mustFind(t *testing.T, root blob.ID, p string) *Node {
	t.Helper()
	n, err := FindNode(context.Background(), m, root, p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFindNode(t *testing.T) {
	m := newMemTrees()
	root := sample(t, m)
	if n := m.mustFind(t, root, "/hearings/x.mp4"); n.Size != 2 || n.Type != NodeFile {
		t.Errorf("found %+v", n)
	}
	if n := m.mustFind(t, root, "hearings/../a.txt"); n.Name != "a.txt" {
		t.Errorf("cleaned path found %q", n.Name)
	}
	if _, err := FindNode(context.Background(), m, root, "/a.txt/x"); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("path through a file: %v", err)
	}
	if _, err := FindNode(context.Background(), m, root, "/hearings/nope"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing path: %v", err)
	}
}

func TestDiffListsChangesAndSkipsSharedSubtrees(t *testing.T) {
	m := newMemTrees()
	shared := m.add(t, &Tree{Nodes: []Node{file("same.wav", data(9))}})
	gone := m.add(t, &Tree{Nodes: []Node{file("old.txt", data(7))}})
	a := m.add(t, &Tree{Nodes: []Node{
		file("a.txt", data(1)), dir("archive", shared), dir("gone", gone),
		{Name: "l", Type: NodeSymlink, LinkTarget: "a.txt"}, file("swap", data(2)),
	}})
	b := m.add(t, &Tree{Nodes: []Node{
		file("a.txt", data(1), data(4)), dir("archive", shared), file("new.txt", data(5)),
		{Name: "l", Type: NodeSymlink, LinkTarget: "new.txt"}, dir("swap", shared),
	}})
	changes, err := Diff(context.Background(), m, a, b)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Kind+" "+c.Path)
	}
	want := []string{"changed /a.txt", "removed /gone", "removed /gone/old.txt", "changed /l", "added /new.txt", "changed /swap"}
	if !slices.Equal(got, want) {
		t.Errorf("diff:\n got %q\nwant %q", got, want)
	}
	if m.reads[shared] != 0 {
		t.Errorf("a subtree both sides share was read %d times", m.reads[shared])
	}
	if same, err := Diff(context.Background(), m, a, a); err != nil || len(same) != 0 {
		t.Errorf("diff of a tree with itself: %v, %v", same, err)
	}
}

func TestReachableReadsEachTreeOnceAndReportsEveryBlob(t *testing.T) {
	m := newMemTrees()
	root1 := sample(t, m)
	hearings := *m.mustFind(t, root1, "hearings").Subtree
	root2 := m.add(t, &Tree{Nodes: []Node{dir("hearings", hearings), file("b.txt", data(8))}})
	clear(m.reads)

	seen := map[blob.ID]int{}
	if err := Reachable(context.Background(), m, []blob.ID{root1, root2, root1}, func(id blob.ID) { seen[id]++ }); err != nil {
		t.Fatal(err)
	}
	for id, n := range m.reads {
		if n != 1 {
			t.Errorf("tree %s read %d times", id.Short(), n)
		}
	}
	if len(m.reads) != 4 {
		t.Errorf("read %d trees, want 4", len(m.reads))
	}
	for _, id := range []blob.ID{root1, root2, hearings, data(1), data(2), data(3), data(8)} {
		if seen[id] == 0 {
			t.Errorf("blob %x not reported", id[:2])
		}
	}
	if seen[hearings] != 1 {
		t.Errorf("shared tree reported %d times", seen[hearings])
	}

	m.fail[hearings] = errors.New("unreadable")
	err := Reachable(context.Background(), m, []blob.ID{root2}, func(blob.ID) {})
	if err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Errorf("Reachable over an unreadable tree: %v", err)
	}
}

func TestDecodeTreeRefusesWhatRestoreCannotTrust(t *testing.T) {
	h := blob.ID{1}
	for name, js := range map[string]string{
		"dot-dot":        `{"nodes":[{"name":"..","type":"dir","subtree":"` + h.String() + `"}]}`,
		"slash":          `{"nodes":[{"name":"a/b","type":"symlink"}]}`,
		"unsorted":       `{"nodes":[{"name":"b","type":"symlink"},{"name":"a","type":"symlink"}]}`,
		"repeated":       `{"nodes":[{"name":"a","type":"symlink"},{"name":"a","type":"symlink"}]}`,
		"file no hash":   `{"nodes":[{"name":"a","type":"file"}]}`,
		"dir no subtree": `{"nodes":[{"name":"a","type":"dir"}]}`,
		"unknown type":   `{"nodes":[{"name":"a","type":"fifo"}]}`,
		"not json":       `{"nodes":[`,
	} {
		if _, err := DecodeTree([]byte(js)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := EncodeTree(&Tree{Nodes: []Node{file("a"), file("a")}}); err == nil {
		t.Error("encoded a tree with two entries of one name")
	}
}

func TestRawNamesRoundTrip(t *testing.T) {
	b, err := EncodeTree(&Tree{Nodes: []Node{{Name: "M\xfcller", Type: NodeSymlink, LinkTarget: "\xff"}}})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := DecodeTree(b)
	if err != nil {
		t.Fatal(err)
	}
	if n := tr.Nodes[0]; n.Name != "M\xfcller" || n.LinkTarget != "\xff" || n.NameRaw != nil {
		t.Errorf("decoded %+v", n)
	}
}

func TestFind(t *testing.T) {
	a := &Snapshot{ID: blob.ID{0xab, 0xcd, 0xef, 0x01}}
	b := &Snapshot{ID: blob.ID{0xab, 0xcd, 0xef, 0x02}}
	snaps := []*Snapshot{a, b}
	if sn, err := Find(snaps, "latest"); err != nil || sn != b {
		t.Errorf("latest: %v, %v", sn, err)
	}
	if sn, err := Find(snaps, "ABCDEF01"); err != nil || sn != a {
		t.Errorf("upper-case prefix: %v, %v", sn, err)
	}
	if _, err := Find(snaps, "abcdef0"); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short prefix: %v", err)
	}
	if _, err := Find(append(snaps, &Snapshot{ID: blob.ID{0xab, 0xcd, 0xef, 0x01, 0x02}}), "abcdef01"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := Find(snaps, "12345678"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := Find(nil, "latest"); !errors.Is(err, ErrNotFound) {
		t.Errorf("latest of none: %v", err)
	}
}

func TestSnapshotEncodingKeepsIDOutside(t *testing.T) {
	sn := &Snapshot{Hostname: "court1", Paths: []string{"/rec"}, Tree: blob.ID{3}, ID: blob.ID{9}}
	b, err := Encode(sn)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), blob.ID{9}.String()) {
		t.Error("the snapshot's own id is stored inside it")
	}
	got, err := Decode(b, blob.ID{7})
	if err != nil || got.ID != (blob.ID{7}) || got.Tree != sn.Tree || got.Hostname != "court1" {
		t.Errorf("decoded %+v, %v", got, err)
	}
	if _, err := Decode([]byte("{"), blob.ID{7}); err == nil {
		t.Error("decoded a truncated snapshot")
	}
}

func TestRetag(t *testing.T) {
	orig := &Snapshot{Hostname: "city-a", Tags: []string{"nightly", "room-3"}, ID: blob.ID{1}}
	for _, c := range []struct {
		set         []string
		replace     bool
		add, remove []string
		want        []string
		changed     bool
	}{
		{add: []string{"legal-hold"}, want: []string{"nightly", "room-3", "legal-hold"}, changed: true},
		{add: []string{"nightly"}, want: []string{"nightly", "room-3"}},
		{remove: []string{"nightly"}, want: []string{"room-3"}, changed: true},
		{remove: []string{"absent"}, want: []string{"nightly", "room-3"}},
		{set: []string{"legal-hold", "legal-hold"}, replace: true, want: []string{"legal-hold"}, changed: true},
		{replace: true, want: nil, changed: true},
		{set: []string{"a"}, replace: true, add: []string{"b"}, remove: []string{"a"}, want: []string{"b"}, changed: true},
	} {
		got, changed := orig.Retag(c.set, c.replace, c.add, c.remove)
		if changed != c.changed || !slices.Equal(got.Tags, c.want) {
			t.Errorf("Retag(%v, %v, %v, %v) = %v, %v; want %v, %v", c.set, c.replace, c.add, c.remove, got.Tags, changed, c.want, c.changed)
			continue
		}
		if !changed {
			if got != orig {
				t.Error("an unchanged retag returned a copy")
			}
			continue
		}
		if got.Original == nil || *got.Original != orig.ID || got.ID != (blob.ID{}) || got.Hostname != "city-a" {
			t.Errorf("copy: original %v, id %v, host %q", got.Original, got.ID, got.Hostname)
		}
		// Retagging the copy again still points to the backup's snapshot.
		got.ID = blob.ID{2}
		again, _ := got.Retag(nil, false, []string{"x"}, nil)
		if *again.Original != orig.ID {
			t.Errorf("second retag: original %v, want %v", again.Original, orig.ID)
		}
	}
	if !slices.Equal(orig.Tags, []string{"nightly", "room-3"}) {
		t.Errorf("Retag changed the original's tags: %v", orig.Tags)
	}
}
