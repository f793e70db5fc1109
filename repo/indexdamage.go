package repo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
)

// A damaged index file must not block the whole repository (design.md
// §13.1): it is read from the cache or a replica when one holds it
// intact, and otherwise left out as if it were missing. Leaving it out
// is safe for every command that loads the index through LoadIndex:
//
//   - a backup that does not find a blob in the index stores it again
//     (and a parent tree it cannot read makes it read the files again),
//     so its snapshot only ever refers to blobs an intact index lists;
//   - read commands (restore, ls, dump, …) re-index the packs that no
//     intact index file lists from their own headers (ReindexUnlisted),
//     in memory only, so the blobs of the lost file are found again;
//   - prune and verify do not use LoadIndex: prune refuses to run from a
//     damaged index (it would take the packs it lists for garbage), and
//     verify reports the file and repairs it from a replica.

// loadIndexFile reads, checks, opens and decodes one index file. A
// damaged one (ErrDamaged) is read again from Options.IndexFallback when
// tolerant and there is one.
func (r *Repository) loadIndexFile(ctx context.Context, h remote.Handle, tolerant bool) (*index.File, error) {
	f, err := r.decodeIndexFile(r.LoadFile(ctx, h))
	if err == nil || !tolerant || !errors.Is(err, ErrDamaged) || r.opts.IndexFallback == nil {
		return f, err
	}
	data, ferr := remote.ReadAll(ctx, r.opts.IndexFallback, h)
	if ferr == nil {
		ferr = CheckName(h, data)
	}
	if ferr == nil {
		f, ferr = r.decodeIndexFile(r.openFile(h, data))
	}
	if ferr != nil {
		return nil, err
	}
	r.cache(h, data)
	r.Warn("%s is damaged in %s (%v); read its intact copy from %s", h, r.be.Location(), err, r.opts.IndexFallback.Location())
	return f, nil
}

// decodeIndexFile decodes an opened index file; one that does not decode
// is damaged.
func (r *Repository) decodeIndexFile(plain []byte, err error) (*index.File, error) {
	if err != nil {
		return nil, err
	}
	f, err := index.Decode(plain)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrDamaged)
	}
	return f, nil
}

// noteDamagedIndex records the index files LoadIndex left out as damaged
// and says so. They count as seen but not relied on, so SecureSnapshot
// neither reads them again nor takes their damage for a prune.
func (r *Repository) noteDamagedIndex(damaged map[string]error) {
	names := make([]string, 0, len(damaged))
	for name := range damaged {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r.noteIndexFile(name, false)
		r.Warn("index/%s is damaged and no intact copy was found (%v); going on without it: backups store what it listed again. Repair it: courtbak verify --repair --replica URL",
			name, damaged[name])
	}
	r.indexMu.Lock()
	r.indexDamaged = names
	r.indexMu.Unlock()
}

// DamagedIndexFiles names the index files the last LoadIndex left out.
func (r *Repository) DamagedIndexFiles() []string {
	r.indexMu.Lock()
	defer r.indexMu.Unlock()
	return append([]string(nil), r.indexDamaged...)
}

// ReindexUnlisted, after LoadIndex left out damaged index files, adds to
// the in-memory index every stored pack no loaded index file lists, read
// from the pack's own (authenticated) header: the blobs the lost files
// listed are found again. Nothing is written. Read commands call it;
// backups must not use what it adds (see above). It does nothing when no
// index file was damaged.
func (r *Repository) ReindexUnlisted(ctx context.Context) error {
	damaged := r.DamagedIndexFiles()
	if len(damaged) == 0 {
		return nil
	}
	infos, err := r.List(ctx, remote.Data)
	if err != nil {
		return fmt.Errorf("list packs to index again: %w", err)
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		sem     = make(chan struct{}, 8)
		indexed int
		failed  []string
	)
	for _, fi := range infos {
		id, err := blob.ParseID(fi.Name)
		if err != nil || r.index.HasPack(id) {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(id blob.ID, size int64) {
			defer func() { <-sem; wg.Done() }()
			entries, err := r.ReadPackHeader(ctx, id, size)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s (%v)", id.Short(), err))
				return
			}
			r.index.AddPack(id, entries)
			indexed++
		}(id, fi.Size)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	r.Warn("%d packs that no intact index file lists were indexed again from their headers, for this run only (damaged: index/%s)",
		indexed, strings.Join(damaged, ", index/"))
	if len(failed) > 0 {
		sort.Strings(failed)
		r.Warn("the headers of %d packs no index lists cannot be read: %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}
