package buffers

import "testing"

func TestListRecyclesAndBounds(t *testing.T) {
	l := New(2, 64)
	a, b, c := l.Get(), l.Get(), l.Get()
	for _, x := range []*[]byte{a, b, c} {
		if len(*x) != 0 || cap(*x) < 64 {
			t.Fatalf("buffer len %d cap %d", len(*x), cap(*x))
		}
	}
	*a = append(*a, "data"...)
	l.Put(a)
	l.Put(b)
	l.Put(c) // list full: dropped
	small := make([]byte, 0, 8)
	l.Put(&small) // too small: dropped
	huge := make([]byte, 0, 4*64+1)
	l.Put(&huge) // grown too big: dropped
	got := map[*[]byte]bool{l.Get(): true, l.Get(): true}
	if !got[a] || !got[b] {
		t.Error("recycled buffers were not returned")
	}
	if x := l.Get(); x == c || cap(*x) < 64 {
		t.Error("a dropped or new buffer came back wrong")
	}
	if len(*a) != 0 {
		t.Error("a recycled buffer is not empty")
	}
}
