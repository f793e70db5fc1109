package archiver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Scan walks opts.Paths as Run does, with the same excludes, markers and
// file system boundaries, and calls fn for every directory, regular file
// and symlink a backup would store, in walk order (a directory before
// what it holds). It reads no file's contents and nothing of the
// repository: it serves backup --dry-run and the totals of the progress
// bar. Directories that cannot be listed go to opts.OnError.
func Scan(ctx context.Context, opts Options, fn func(path string, fi fs.FileInfo) error) error {
	sel, err := newSelector(opts)
	if err != nil {
		return err
	}
	for _, p := range AbsPaths(opts.Paths) {
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("source path %s: %w", p, err)
		}
		if err := scan(ctx, sel, opts.OnError, p, fi, fn); err != nil {
			return err
		}
	}
	return nil
}

func scan(ctx context.Context, sel *selector, onError func(string, error), path string, fi fs.FileInfo, fn func(string, fs.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !fi.IsDir() && !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
		return nil // devices, sockets and pipes are not stored
	}
	if err := fn(path, fi); err != nil {
		return err
	}
	if !fi.IsDir() {
		return nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		if onError != nil {
			onError(path, err)
		}
		return nil
	}
	for _, de := range sel.entries(path, entries) {
		child := filepath.Join(path, de.Name())
		cfi, err := de.Info()
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && onError != nil {
				onError(child, err)
			}
			continue
		}
		if cfi.IsDir() && sel.otherDevice(cfi) {
			if err := fn(child, cfi); err != nil {
				return err
			}
			continue
		}
		if err := scan(ctx, sel, onError, child, cfi, fn); err != nil {
			return err
		}
	}
	return nil
}
