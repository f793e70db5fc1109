package checker

import (
	"bytes"
	"context"
	"fmt"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/report"
)

// repair replaces every object found damaged or missing at the primary
// with an intact copy from the first replica that has one, and, with the
// key, restores lost index files that list blobs snapshots need. Problems
// the replaced objects caused are marked repaired.
func (c *checker) repair(ctx context.Context) error {
	repaired := map[string]bool{}
	for _, h := range handles(c.damaged, "") {
		if c.restore(ctx, h) {
			repaired[h.String()] = true
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	covered := map[blob.ID]bool{}
	if c.r != nil && len(c.unindexed) > 0 {
		c.restoreIndex(ctx, repaired, covered)
	}
	for i := range c.rep.Problems {
		p := &c.rep.Problems[i]
		if p.Copy != c.primary.Location || p.Kind == KindRepairFailed {
			continue
		}
		if p.Kind == KindBlobNotIndexed {
			id, err := blob.ParseID(p.Blob)
			p.Repaired = err == nil && covered[id]
		} else {
			p.Repaired = p.Object != "" && repaired[p.Object]
		}
		if p.Repaired {
			p.Action = "" // nothing left to do
		}
	}
	return ctx.Err()
}

// restore fetches an intact copy of h from the replicas and stores it at
// the primary.
func (c *checker) restore(ctx context.Context, h remote.Handle) bool {
	for _, cs := range c.replicas {
		if _, ok := cs.objects[h]; !ok || cs.foreign {
			continue
		}
		data, err := remote.ReadAll(ctx, cs.Backend, h)
		if err != nil {
			continue
		}
		c.read(cs, h, int64(len(data)), false)
		if !c.intact(h, data) {
			continue
		}
		return c.save(ctx, h, data, cs)
	}
	c.problem(report.Problem{Copy: c.primary.Location, Kind: KindRepairFailed, Object: h.String(),
		Message: "no replica holds an intact copy of the object", Action: "find an intact copy elsewhere (another replica, an older backup medium)"})
	return false
}

// intact checks a candidate copy before it replaces anything.
func (c *checker) intact(h remote.Handle, data []byte) bool {
	if h.Type != remote.Config {
		return repo.CheckName(h, data) == nil
	}
	if c.r != nil {
		return c.r.CheckConfig(data) == nil
	}
	if c.configWant != nil && !bytes.Equal(data, c.configWant) {
		return false
	}
	cfg, err := repo.ParseConfig(data)
	return err == nil && (c.rep.Repository.ID == "" || cfg.ID == c.rep.Repository.ID)
}

// save stores a verified copy at the primary and reads it back: a repair is
// reported only once the primary really holds the intact bytes.
func (c *checker) save(ctx context.Context, h remote.Handle, data []byte, from *copyState) bool {
	err := c.primary.Backend.Save(ctx, h, data)
	if err == nil {
		var back []byte
		back, err = remote.ReadAll(ctx, c.primary.Backend, h)
		if err == nil && !bytes.Equal(back, data) {
			err = fmt.Errorf("reading it back gave different bytes")
		}
	}
	if err != nil {
		c.problem(report.Problem{Copy: c.primary.Location, Kind: KindRepairFailed, Object: h.String(),
			Message: fmt.Sprintf("storing the intact copy from %s failed: %v", from.Location, err), Action: "check the storage, then run the repair again"})
		return false
	}
	c.mu.Lock()
	c.rep.Repairs = append(c.rep.Repairs, report.Repair{Object: h.String(), From: from.Location, Bytes: int64(len(data))})
	c.mu.Unlock()
	return true
}

// restoreIndex looks in the replicas for index files the primary lacks
// that list blobs its snapshots need, and restores each with the packs it
// lists that the primary lacks (packs first, so the primary never indexes
// a pack it does not hold). covered receives the blobs now indexed.
func (c *checker) restoreIndex(ctx context.Context, repaired map[string]bool, covered map[blob.ID]bool) {
	for _, cs := range c.replicas {
		if cs.foreign {
			continue
		}
		for _, h := range handles(cs.objects, remote.Index) {
			if _, ok := c.primary.objects[h]; ok || repaired[h.String()] || ctx.Err() != nil {
				continue
			}
			data, err := remote.ReadAll(ctx, cs.Backend, h)
			if err != nil || repo.CheckName(h, data) != nil {
				continue
			}
			plain, err := c.r.OpenFile(h, data)
			if err != nil {
				continue
			}
			f, err := index.Decode(plain)
			if err != nil || !c.needed(f) {
				continue
			}
			ok := true
			for _, p := range f.Packs {
				ph := remote.Handle{Type: remote.Data, Name: p.ID.String()}
				if _, present := c.primary.objects[ph]; present || repaired[ph.String()] {
					continue
				}
				if ok = c.restore(ctx, ph); !ok {
					break
				}
				repaired[ph.String()] = true
			}
			if !ok || !c.save(ctx, h, data, cs) {
				continue
			}
			repaired[h.String()] = true
			for _, p := range f.Packs {
				for _, e := range p.Blobs {
					covered[e.ID] = true
				}
			}
		}
	}
}

// needed reports whether an index file lists a blob that snapshots need
// and no index of the primary lists.
func (c *checker) needed(f *index.File) bool {
	for _, p := range f.Packs {
		for _, e := range p.Blobs {
			if c.unindexed[e.ID] {
				return true
			}
		}
	}
	return false
}
