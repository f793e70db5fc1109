// Package remote stores a repository's objects. A Backend is a flat store of
// immutable, named objects grouped by Type; wrappers (retry, rate limit,
// fault injection, failover) decorate a Backend without the repository noticing.
package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Type groups objects. Each type is a directory (local) or key prefix (S3).
type Type string

// Object types of a courtbak repository.
const (
	Config   Type = "config"
	Keys     Type = "keys"
	Data     Type = "data"
	Index    Type = "index"
	Snapshot Type = "snapshots"
	// Log holds the snapshot log's records (docs/design.md §14.1); they
	// name snapshots, so they come after them.
	Log Type = "log"
)

// AllTypes lists every object type in the order replication copies them:
// an object is only copied after everything it may refer to.
var AllTypes = []Type{Config, Keys, Data, Index, Snapshot, Log}

// Handle names one object.
type Handle struct {
	Type Type
	// Name is the lowercase hex BLAKE3-256 of the object's bytes, except for
	// the single config object, whose name is "config".
	Name string
}

func (h Handle) String() string {
	if h.Type == Config {
		return "config"
	}
	return string(h.Type) + "/" + h.Name
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Handle
	Size int64
	// ModTime is when the storage says the object was stored, to the
	// second at least; zero where a backend does not tell.
	ModTime time.Time
}

// ErrNotFound is returned (wrapped) when an object or repository is missing.
var ErrNotFound = errors.New("not found")

// Backend is the storage interface every backend implements and every
// wrapper decorates.
//
// Save stores data under h, replacing any object of that name (names are
// content hashes, so a replacement carries the same bytes, except when repair
// replaces a damaged copy). A Save that fails or is cancelled leaves either no
// object or the old one; never a partial one.
//
// Load calls fn with a reader over length bytes of h starting at offset;
// length 0 means up to the end. fn may be called again if a wrapper retries,
// so it must not keep state across calls.
type Backend interface {
	Location() string
	Save(ctx context.Context, h Handle, data []byte) error
	Load(ctx context.Context, h Handle, offset, length int64, fn func(io.Reader) error) error
	Stat(ctx context.Context, h Handle) (ObjectInfo, error)
	List(ctx context.Context, t Type, fn func(ObjectInfo) error) error
	Remove(ctx context.Context, h Handle) error
	Close() error
}

// ReadAll loads a whole object into memory.
func ReadAll(ctx context.Context, be Backend, h Handle) ([]byte, error) {
	return ReadRange(ctx, be, h, 0, 0)
}

// ReadRange loads length bytes of h from offset (0 = to the end).
func ReadRange(ctx context.Context, be Backend, h Handle, offset, length int64) ([]byte, error) {
	var buf []byte
	err := be.Load(ctx, h, offset, length, func(rd io.Reader) error {
		if length == 0 {
			// Backends tell the size of a whole object where they know it
			// (sizedReader), so a pack is read without regrowing copies.
			size := int64(0)
			if sr, ok := rd.(sizedReader); ok {
				size = sr.Size()
			}
			b := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
			_, err := b.ReadFrom(rd)
			buf = b.Bytes()
			return err
		}
		// The size is known: one allocation, no regrowing copies.
		buf = make([]byte, length)
		return readFull(rd, &buf)
	})
	if err != nil {
		return nil, err
	}
	if length > 0 && int64(len(buf)) != length {
		return nil, fmt.Errorf("read %s at %d: got %d bytes, want %d: %w", h, offset, len(buf), length, errShort)
	}
	return buf, nil
}

// ReadRangeInto reads len(buf) bytes of h from offset into buf, which
// callers recycle to spare the allocation and page faults of a fresh one.
// Through a Failover, the bytes go from the copy that serves them
// straight into buf.
func ReadRangeInto(ctx context.Context, be Backend, h Handle, offset int64, buf []byte) error {
	_, err := readInto(ctx, be, h, offset, buf, false)
	return err
}

// ReadObjectInto reads all of h into buf's capacity and returns the bytes
// read; an object larger than cap(buf) is an error (ErrTooLarge), with no
// more than cap(buf) bytes of it read. A request for a whole object spares
// requests and, on some S3 servers, work: versitygw sends a whole object
// straight from its file, where it copies a range through a buffer of
// its own.
func ReadObjectInto(ctx context.Context, be Backend, h Handle, buf []byte) ([]byte, error) {
	return readInto(ctx, be, h, 0, buf, true)
}

// ErrTooLarge is returned by ReadObjectInto for an object larger than the
// buffer.
var ErrTooLarge = errors.New("object is larger than the buffer")

// intoReader is a backend that reads into a caller's buffer itself
// (Failover, which tries its copies in turn).
type intoReader interface {
	readInto(ctx context.Context, h Handle, offset int64, buf []byte, whole bool) ([]byte, error)
}

func readInto(ctx context.Context, be Backend, h Handle, offset int64, buf []byte, whole bool) ([]byte, error) {
	if ir, ok := As[intoReader](be); ok {
		return ir.readInto(ctx, h, offset, buf, whole)
	}
	return loadInto(ctx, be, h, offset, buf, whole)
}

// loadInto is readInto with one Load of be: with whole, the object from
// offset to its end into buf's capacity; else exactly len(buf) bytes.
func loadInto(ctx context.Context, be Backend, h Handle, offset int64, buf []byte, whole bool) ([]byte, error) {
	length := int64(len(buf))
	if whole {
		length = 0
		buf = buf[:cap(buf)]
	} else if length == 0 {
		return buf, nil
	}
	var got []byte
	err := be.Load(ctx, h, offset, length, func(rd io.Reader) error {
		got = buf
		if err := readFull(rd, &got); err != nil || !whole || len(got) < len(buf) {
			return err
		}
		// buf is full: the object must end here.
		if n, err := rd.Read(make([]byte, 1)); n > 0 {
			return fmt.Errorf("read %s: %w (%d bytes)", h, ErrTooLarge, len(buf))
		} else if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !whole && len(got) != len(buf) {
		return nil, fmt.Errorf("read %s at %d: got %d bytes, want %d: %w", h, offset, len(got), len(buf), errShort)
	}
	return got, nil
}

// readFull fills *buf from rd and truncates it to what was read; a short
// read is left for the caller to report.
func readFull(rd io.Reader, buf *[]byte) error {
	n, err := io.ReadFull(rd, *buf)
	*buf = (*buf)[:n]
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// sizedReader is a reader that knows how many bytes it will deliver.
type sizedReader interface {
	io.Reader
	Size() int64
}

// withSize attaches a known size to a reader.
type withSize struct {
	io.Reader
	size int64
}

func (w withSize) Size() int64 { return w.size }

// errShort marks a range that ended before its length: the copy is
// truncated.
var errShort = errors.New("object is shorter than the range read")
