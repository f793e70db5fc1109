package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/courtbak/courtbak/remote/directio"
)

// Local stores objects as files under a directory. Writes are atomic: a
// temporary file is written, fsynced and renamed into place, and the
// directory is fsynced so the rename survives a power loss. Large objects
// are written around the page cache where the file system allows it (see
// directio).
type Local struct {
	root string
}

// OpenLocal returns a backend for the directory root. It does not check that
// a repository exists there.
func OpenLocal(root string) (*Local, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("local repository path %q: %w", root, err)
	}
	return &Local{root: abs}, nil
}

// Connections is 1 where packs are written around the page cache: one
// large direct write at a time keeps a disk busy, and a second pack in
// memory would only add to a backup's peak memory. Elsewhere (network file
// systems, tmpfs) a second upload overlaps the other's fsync.
func (l *Local) Connections() int {
	if directio.SupportedDir(l.root) {
		return 1
	}
	return 2
}

// Location returns the repository directory.
func (l *Local) Location() string { return l.root }

func (l *Local) dir(h Handle) string {
	if h.Type == Data && len(h.Name) >= 2 {
		return filepath.Join(l.root, string(h.Type), h.Name[:2])
	}
	if h.Type == Config {
		return l.root
	}
	return filepath.Join(l.root, string(h.Type))
}

func (l *Local) path(h Handle) string {
	if h.Type == Config {
		return filepath.Join(l.root, "config")
	}
	return filepath.Join(l.dir(h), h.Name)
}

func checkHandle(h Handle) error {
	if h.Type == Config {
		return nil
	}
	if h.Name == "" || strings.ContainsAny(h.Name, `/\`) || h.Name == "." || h.Name == ".." {
		return fmt.Errorf("invalid object name %q", h.Name)
	}
	return nil
}

// Save writes data to h atomically.
func (l *Local) Save(ctx context.Context, h Handle, data []byte) error {
	if err := checkHandle(h); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := l.dir(h)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	tmp, err := createTemp(dir)
	if err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	cleanup := func(err error) error {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("save %s: %w", h, err)
	}
	if err := directio.WriteFile(tmp, data); err != nil {
		return cleanup(err)
	}
	if syncWrites == 0 {
		if err := tmp.Sync(); err != nil {
			return cleanup(err)
		}
	}
	if err := tmp.Close(); err != nil {
		return cleanup(err)
	}
	if err := ctx.Err(); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	// Objects are read-only once stored, as they are immutable.
	if err := os.Chmod(tmp.Name(), 0o400); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("save %s: %w", h, err)
	}
	if err := os.Rename(tmp.Name(), l.path(h)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("save %s: %w", h, err)
	}
	return syncDir(dir)
}

// createTemp creates a new, empty temporary file for an object in dir,
// named so that List skips it. It is opened with syncWrites, so that a
// write is durable when it returns and no fsync has to follow: one flush
// per pack instead of a data flush and then a journal commit made a 3 GB
// first backup 8% faster on ext4 (five runs each, 8.6 s instead of 9.35 s).
func createTemp(dir string) (*os.File, error) {
	for range 100 {
		name := filepath.Join(dir, ".tmp-"+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|syncWrites, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("no free temporary file name in %s", dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Load reads a range of h.
func (l *Local) Load(ctx context.Context, h Handle, offset, length int64, fn func(io.Reader) error) error {
	if err := checkHandle(h); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(l.path(h))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("load %s: %w", h, ErrNotFound)
		}
		return fmt.Errorf("load %s: %w", h, err)
	}
	defer f.Close()
	if offset < 0 || length < 0 {
		return fmt.Errorf("load %s: invalid range offset %d length %d", h, offset, length)
	}
	var rd io.Reader = f
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return fmt.Errorf("load %s: %w", h, err)
		}
	}
	if length > 0 {
		rd = io.LimitReader(f, length)
	} else if fi, err := f.Stat(); err == nil {
		rd = withSize{f, fi.Size() - offset}
	}
	return fn(rd)
}

// Stat returns the size of h.
func (l *Local) Stat(ctx context.Context, h Handle) (ObjectInfo, error) {
	if err := checkHandle(h); err != nil {
		return ObjectInfo{}, err
	}
	fi, err := os.Stat(l.path(h))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ObjectInfo{}, fmt.Errorf("stat %s: %w", h, ErrNotFound)
		}
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", h, err)
	}
	return ObjectInfo{Handle: h, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List calls fn for every object of type t, skipping temporary files.
func (l *Local) List(ctx context.Context, t Type, fn func(ObjectInfo) error) error {
	if t == Config {
		fi, err := l.Stat(ctx, Handle{Type: Config, Name: "config"})
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fi)
	}
	base := filepath.Join(l.root, string(t))
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == base {
				return nil
			}
			return err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return fn(ObjectInfo{Handle: Handle{Type: t, Name: d.Name()}, Size: info.Size(), ModTime: info.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	return nil
}

// Foreign returns up to a few entries of the directory that are not part
// of a repository. A missing directory holds none.
func (l *Local) Foreign(context.Context) ([]string, error) {
	entries, err := os.ReadDir(l.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look into %s: %w", l.root, err)
	}
	var out []string
	for _, e := range entries {
		if !layoutName(e.Name()) && len(out) < maxForeign {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Remove deletes h. Removing a missing object is not an error.
func (l *Local) Remove(ctx context.Context, h Handle) error {
	if err := checkHandle(h); err != nil {
		return err
	}
	err := os.Remove(l.path(h))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", h, err)
	}
	return nil
}

// Close releases nothing; it exists to satisfy Backend.
func (l *Local) Close() error { return nil }
