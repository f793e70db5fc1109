package repo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
)

// journal is a local, append-only list of packs uploaded but perhaps not
// yet indexed. Index files are written only every few minutes, so a backup
// killed with SIGKILL would otherwise leave packs nobody knows about; the
// next run on the same host indexes them from the journal and reuses them.
// It holds pack ids and sizes only, nothing secret. Each run has its own
// journal file, locked while the run lives, so concurrent backups on one
// host never recover (or delete) each other's.
type journal struct {
	mu   sync.Mutex
	path string
	f    *os.File
	now  func() time.Time
}

func (r *Repository) journalDir() string {
	if r.opts.CacheDir == "" {
		return ""
	}
	return filepath.Join(r.opts.CacheDir, r.cfg.ID, "journal")
}

func (r *Repository) openJournal() *journal {
	dir := r.journalDir()
	if dir == "" {
		return nil
	}
	fail := func(err error) *journal {
		r.Warn("cache directory unusable, an interrupted backup will re-upload more: %v", err)
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	f, err := os.CreateTemp(dir, "pending-*")
	if err != nil {
		return fail(err)
	}
	if err := lockFile(f, true); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return fail(err)
	}
	return &journal{path: f.Name(), f: f, now: r.opts.Now}
}

// add records an uploaded pack durably before it is relied on.
func (j *journal) add(id blob.ID, size int) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := fmt.Fprintf(j.f, "%s %d %d\n", id, size, j.now().Unix()); err == nil {
		_ = j.f.Sync()
	}
}

// finish removes the journal once every pack in it is indexed.
func (j *journal) finish() {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = os.Remove(j.path) // while still locked: no recovery can pick it up
	_ = j.f.Close()
}

// RecoverJournal indexes packs that interrupted backups on this host
// uploaded but did not index. Journals of backups still running are left
// alone. The index must be loaded. It returns the number of packs recovered.
func (r *Repository) RecoverJournal(ctx context.Context) (int, error) {
	dir := r.journalDir()
	if dir == "" {
		return 0, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	total := 0
	for _, de := range entries {
		n, err := r.recoverJournalFile(ctx, filepath.Join(dir, de.Name()))
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (r *Repository) recoverJournalFile(ctx context.Context, p string) (int, error) {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if lockFile(f, false) != nil {
		return 0, nil // its backup is still running
	}
	known := map[blob.ID]bool{} // packs of this journal seen already
	var packs []index.PackBlobs
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue // a torn last line from the kill, or a line without its upload time
		}
		id, err := blob.ParseID(fields[0])
		size, serr := strconv.ParseInt(fields[1], 10, 64)
		uploaded, terr := strconv.ParseInt(fields[2], 10, 64)
		if err != nil || serr != nil || terr != nil || known[id] || r.index.HasPack(id) {
			continue
		}
		if r.Now().Sub(time.Unix(uploaded, 0)) > MaxBackupAge {
			// A prune may have seen it unindexed long enough ago to delete
			// it any moment now (docs/design.md §20.3): upload the data again.
			continue
		}
		known[id] = true
		fi, err := r.be.Stat(ctx, remote.Handle{Type: remote.Data, Name: id.String()})
		if err != nil || fi.Size != size {
			continue // never fully stored: nothing to recover
		}
		entries, err := r.ReadPackHeader(ctx, id, size)
		if err != nil {
			r.Warn("not recovering pack %s from an interrupted backup: %v", id.Short(), err)
			continue
		}
		packs = append(packs, index.PackBlobs{ID: id, Size: size, Blobs: entries})
	}
	if len(packs) > 0 {
		if _, err := r.SaveFile(ctx, remote.Index, index.Encode(&index.File{Packs: packs})); err != nil {
			return 0, fmt.Errorf("index packs of an interrupted backup: %w", err)
		}
		for _, pb := range packs {
			r.index.AddPack(pb.ID, pb.Blobs)
		}
	}
	if err := os.Remove(p); err != nil {
		return len(packs), fmt.Errorf("remove journal: %w", err)
	}
	return len(packs), nil
}
