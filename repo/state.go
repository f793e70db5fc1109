package repo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrLocked means another process holds a lock that this operation needs.
var ErrLocked = errors.New("locked by another process")

// StateDir is where this host keeps local state about the repository
// (journals, a prune plan): the cache directory plus the repository id, or
// "" without a cache directory.
func (r *Repository) StateDir() string {
	if r.opts.CacheDir == "" {
		return ""
	}
	return filepath.Join(r.opts.CacheDir, r.cfg.ID)
}

// LockExclusive creates path if needed and takes an exclusive advisory
// lock on it without waiting; it returns ErrLocked if another process
// holds it. Closing the file releases the lock, as does the process's end.
func LockExclusive(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f, false); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", path, ErrLocked)
	}
	return f, nil
}
