package repo

import (
	"os"
	"path/filepath"

	"github.com/courtbak/courtbak/remote"
)

// Index and snapshot files are read by every command; on object storage
// fetching thousands of them is most of a command's time. They are
// immutable and named by their hash, so a local copy is as good as the
// stored one once it checks against its name: the cache holds the sealed
// bytes (never plaintext), and a damaged cached file is simply fetched
// again. verify never trusts the cache: it reads storage itself.

// cachePath is where a cached object lives, or "" when h is not cached.
func (r *Repository) cachePath(h remote.Handle) string {
	if r.opts.CacheDir == "" || r.cfg.ID == "" || (h.Type != remote.Index && h.Type != remote.Snapshot && h.Type != remote.Log) {
		return ""
	}
	return filepath.Join(r.opts.CacheDir, r.cfg.ID, string(h.Type), h.Name)
}

// cached returns the cached bytes of h when they are intact.
func (r *Repository) cached(h remote.Handle) ([]byte, bool) {
	p := r.cachePath(h)
	if p == "" {
		return nil, false
	}
	b, err := os.ReadFile(p)
	if err != nil || CheckName(h, b) != nil {
		return nil, false
	}
	return b, true
}

// cache stores verified bytes of h, atomically; failures only cost speed.
func (r *Repository) cache(h remote.Handle, data []byte) {
	p := r.cachePath(h)
	if p == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), p) != nil {
		_ = os.Remove(tmp.Name())
	}
}

// pruneCache removes cached files of type t that storage no longer lists
// (after a prune), so the cache does not grow without bound.
func (r *Repository) pruneCache(t remote.Type, listed []remote.ObjectInfo) {
	keep := make(map[string]bool, len(listed))
	for _, fi := range listed {
		keep[fi.Name] = true
	}
	r.pruneCacheExcept(t, func(name string) bool { return keep[name] })
}

// pruneCacheExcept removes the cached files of type t whose names keep
// rejects.
func (r *Repository) pruneCacheExcept(t remote.Type, keep func(name string) bool) {
	dir := r.cachePath(remote.Handle{Type: t, Name: "x"})
	if dir == "" {
		return
	}
	dir = filepath.Dir(dir)
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	names, err := d.Readdirnames(-1) // unsorted: 10^5 index files take a while to sort
	_ = d.Close()
	if err != nil {
		return
	}
	for _, name := range names {
		if !keep(name) {
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
}
