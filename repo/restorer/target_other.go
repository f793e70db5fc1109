//go:build !unix

package restorer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// rootDir is a directory opened as an os.Root: nothing outside the target
// is ever reached, though a symlink inside it that stays inside it may be
// followed (os.Root's guarantee; Unix builds follow none).
type rootDir struct {
	r *os.Root
	p string
}

func openTarget(p string) (dirHandle, error) {
	if err := os.MkdirAll(p, 0o700); err != nil {
		return nil, fmt.Errorf("create target %s: %w", p, err)
	}
	r, err := os.OpenRoot(p)
	if err != nil {
		return nil, err
	}
	return &rootDir{r: r, p: p}, nil
}

func (d *rootDir) path() string { return d.p }

func (d *rootDir) enter(name string) (dirHandle, error) {
	p := filepath.Join(d.p, name)
	fi, err := d.r.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		if err := d.r.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		fi, err = d.r.Lstat(name)
	}
	switch {
	case err != nil:
		return nil, err
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("%s %w", p, ErrSymlinkInTarget)
	case !fi.IsDir():
		return nil, fmt.Errorf("%s exists and is not a directory; the snapshot has a directory there (move it away, or restore into an empty directory)", p)
	}
	sub, err := d.r.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	return &rootDir{r: sub, p: p}, nil
}

func (d *rootDir) makeWritable() error {
	fi, err := d.r.Stat(".")
	if err != nil || fi.Mode().Perm()&0o700 == 0o700 {
		return err
	}
	return d.r.Chmod(".", fi.Mode().Perm()|0o700)
}

func (d *rootDir) createTemp() (*os.File, string, error) {
	for range 10 {
		name := tempName()
		f, err := d.r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", fmt.Errorf("create a temporary file in %s: names keep colliding", d.p)
}

func (d *rootDir) fileTimes(_ *os.File, name string, t time.Time) error {
	return d.r.Chtimes(name, t, t)
}

func (d *rootDir) rename(from, to string) error { return d.r.Rename(from, to) }

func (d *rootDir) remove(name string) error { return d.r.Remove(name) }

func (d *rootDir) symlink(target string, _ time.Time) (string, error) {
	for range 10 {
		name := tempName()
		err := d.r.Symlink(target, name)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return name, err
	}
	return "", fmt.Errorf("create a temporary symlink in %s: names keep colliding", d.p)
}

// hardlinks: other builds restore hard links as separate files.
const hardlinks = false

func fileIDOf(fs.FileInfo) fileID { return fileID{} }

func (d *rootDir) link(dirHandle, string, fileID, string) error { return errors.ErrUnsupported }

func (d *rootDir) setMeta(mode fs.FileMode, mtime time.Time) error {
	if err := d.r.Chmod(".", mode); err != nil {
		return err
	}
	return d.r.Chtimes(".", mtime, mtime)
}

func (d *rootDir) close() error { return d.r.Close() }
