// Package mem is a remote.Backend that keeps objects in memory, for tests
// of any package: it passes remote/backendtest like the real backends, and
// costs no disk or fsync.
package mem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courtbak/courtbak/remote"
)

var instances atomic.Uint64

// Backend holds objects in a map. It is safe for concurrent use.
type Backend struct {
	location string
	now      func() time.Time

	mu      sync.Mutex
	objects map[remote.Handle]object
}

type object struct {
	data    []byte
	modTime time.Time
}

// New returns an empty backend whose objects are dated by now (nil: the
// wall clock), so tests of time-dependent safety rules control it.
func New(now func() time.Time) *Backend {
	if now == nil {
		now = time.Now
	}
	return &Backend{
		location: fmt.Sprintf("mem:%d", instances.Add(1)),
		now:      now,
		objects:  map[remote.Handle]object{},
	}
}

// Location names the backend, unique within the process.
func (b *Backend) Location() string { return b.location }

func checkHandle(h remote.Handle) error {
	if h.Type == remote.Config {
		return nil
	}
	if h.Name == "" || strings.ContainsAny(h.Name, `/\`) || h.Name == "." || h.Name == ".." {
		return fmt.Errorf("invalid object name %q", h.Name)
	}
	return nil
}

// key files the config under one name whatever the handle says.
func key(h remote.Handle) remote.Handle {
	if h.Type == remote.Config {
		return remote.Handle{Type: remote.Config, Name: "config"}
	}
	return h
}

// Save stores a copy of data under h, replacing any object of that name.
func (b *Backend) Save(ctx context.Context, h remote.Handle, data []byte) error {
	if err := checkHandle(h); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[key(h)] = object{data: bytes.Clone(data), modTime: b.now()}
	return nil
}

// Load calls fn with a reader over length bytes of h from offset (0: to
// the end).
func (b *Backend) Load(ctx context.Context, h remote.Handle, offset, length int64, fn func(io.Reader) error) error {
	if err := checkHandle(h); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	o, ok := b.objects[key(h)]
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("load %s: %w", h, remote.ErrNotFound)
	}
	if offset < 0 || length < 0 {
		return fmt.Errorf("load %s: invalid range offset %d length %d", h, offset, length)
	}
	data := o.data[min(offset, int64(len(o.data))):]
	if length > 0 {
		data = data[:min(length, int64(len(data)))]
	}
	return fn(sizedReader{bytes.NewReader(data)})
}

// sizedReader tells remote.ReadRange how much it will read.
type sizedReader struct{ *bytes.Reader }

func (r sizedReader) Size() int64 { return int64(r.Len()) }

// Stat returns the size and time of h.
func (b *Backend) Stat(ctx context.Context, h remote.Handle) (remote.ObjectInfo, error) {
	if err := checkHandle(h); err != nil {
		return remote.ObjectInfo{}, err
	}
	b.mu.Lock()
	o, ok := b.objects[key(h)]
	b.mu.Unlock()
	if !ok {
		return remote.ObjectInfo{}, fmt.Errorf("stat %s: %w", h, remote.ErrNotFound)
	}
	return remote.ObjectInfo{Handle: h, Size: int64(len(o.data)), ModTime: o.modTime}, nil
}

// List calls fn for every object of type t, in name order. The objects
// are those stored when List was called; fn may use the backend.
func (b *Backend) List(ctx context.Context, t remote.Type, fn func(remote.ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	b.mu.Lock()
	var infos []remote.ObjectInfo
	for h, o := range b.objects {
		if h.Type == t {
			infos = append(infos, remote.ObjectInfo{Handle: h, Size: int64(len(o.data)), ModTime: o.modTime})
		}
	}
	b.mu.Unlock()
	slices.SortFunc(infos, func(a, b remote.ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %s: %w", t, err)
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes h. Removing a missing object is not an error.
func (b *Backend) Remove(ctx context.Context, h remote.Handle) error {
	if err := checkHandle(h); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.objects, key(h))
	return nil
}

// Close releases nothing: the objects stay readable, as a directory's do.
func (b *Backend) Close() error { return nil }
