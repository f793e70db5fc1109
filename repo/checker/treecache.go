package checker

import (
	"container/list"
	"sync"

	"github.com/zeebo/blake3"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// treeCacheIDs bounds the trees verify keeps decoded, in ids (a node, or
// one blob id of a file's content, counts one; each costs 32 bytes or
// more): about 64 MiB. Snapshots of one host share most of their trees, so
// those of the previous snapshot are usually still here when the next one
// is walked; a tree that dropped out is loaded again.
var treeCacheIDs = 1 << 21

// treeCache keeps the most recently used trees up to a weight.
type treeCache struct {
	mu     sync.Mutex
	max    int
	weight int
	order  *list.List // of *treeCacheItem, most recent first
	items  map[blob.ID]*list.Element
}

type treeCacheItem struct {
	id     blob.ID
	tree   *snapshot.Tree
	weight int
}

func newTreeCache(max int) *treeCache {
	return &treeCache{max: max, order: list.New(), items: map[blob.ID]*list.Element{}}
}

// treeWeight is what a tree costs the cache.
func treeWeight(t *snapshot.Tree) int {
	w := 1
	for i := range t.Nodes {
		w += 1 + len(t.Nodes[i].Content)
	}
	return w
}

// get returns a cached tree, or nil.
func (c *treeCache) get(id blob.ID) *snapshot.Tree {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[id]
	if !ok {
		return nil
	}
	c.order.MoveToFront(el)
	return el.Value.(*treeCacheItem).tree
}

// put caches a tree, dropping the least recently used ones beyond the
// weight; a tree heavier than the whole cache is not kept.
func (c *treeCache) put(id blob.ID, t *snapshot.Tree) {
	w := treeWeight(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[id]; ok || w > c.max {
		return
	}
	c.items[id] = c.order.PushFront(&treeCacheItem{id: id, tree: t, weight: w})
	c.weight += w
	for c.weight > c.max {
		el := c.order.Back()
		it := el.Value.(*treeCacheItem)
		c.order.Remove(el)
		delete(c.items, it.id)
		c.weight -= it.weight
	}
}

// contentSetMax bounds the file contents verify remembers as usable (about
// 40 bytes each with the map's overhead: 40 MiB at most).
var contentSetMax = 1 << 20

// contentSet remembers file contents (lists of data blobs) whose every
// blob was found usable, so that the same file in the next snapshot,
// usually unchanged, costs no lookups: looking a blob up in the on-disk
// index costs microseconds, and a court's daily snapshots repeat nearly
// every file. Only a content without problems is remembered, and nothing
// that makes a blob usable or not changes while snapshots are walked, so
// skipping the lookups finds nothing less. Once full, it stops growing.
type contentSet struct {
	mu  sync.Mutex
	max int
	ok  map[[16]byte]struct{}
}

func contentKey(ids []blob.ID) [16]byte {
	h := blake3.New()
	for i := range ids {
		_, _ = h.Write(ids[i][:])
	}
	var k [16]byte
	copy(k[:], h.Sum(nil))
	return k
}

func (s *contentSet) has(ids []blob.ID) bool {
	if len(ids) == 0 {
		return false
	}
	k := contentKey(ids)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ok[k]
	return ok
}

func (s *contentSet) add(ids []blob.ID) {
	if len(ids) == 0 {
		return
	}
	k := contentKey(ids)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ok == nil {
		s.ok = map[[16]byte]struct{}{}
	}
	if len(s.ok) < s.max {
		s.ok[k] = struct{}{}
	}
}
