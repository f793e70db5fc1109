package checker

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/report"
)

var configHandle = remote.Handle{Type: remote.Config, Name: "config"}

// errMismatch marks an object whose bytes do not match its name (for the
// config: do not parse).
var errMismatch = errors.New("the bytes do not match the object's name")

// keylessNote explains the missing manifest in a keyless report.
const keylessNote = "Keyless verification: without the password, snapshots, file names and file hashes are encrypted, " +
	"so this report has no evidence manifest; every stored object was checked against its name instead. " +
	"Run courtbak verify with the password for the manifest."

// checkKeyless checks every object of the primary against its name (data
// packs only when data is read, and in the day's subset).
func (c *checker) checkKeyless(ctx context.Context) error {
	c.rep.ManifestNote = keylessNote
	counts := map[remote.Type]*int{remote.Snapshot: &c.rep.Checked.Snapshots, remote.Index: &c.rep.Checked.IndexFiles,
		remote.Keys: &c.rep.Checked.Keys, remote.Data: &c.rep.Checked.Packs}
	var packs []string
	for _, h := range handles(c.primary.objects, remote.Data) {
		packs = append(packs, h.Name)
	}
	c.ensureSubsetReads(packs)
	var toHash []remote.Handle
	for _, h := range handles(c.primary.objects, "") {
		if n := counts[h.Type]; n != nil {
			*n++
		}
		if h.Type == remote.Data {
			c.rep.Checked.PackBytes += c.primary.objects[h]
		}
		if h != configHandle && h.Type != remote.Log && c.readsData(h) { // checkLog reads the log
			toHash = append(toHash, h)
			if h.Type == remote.Data {
				c.rep.Checked.PacksRead++
				c.rep.Checked.PackBytesRead += c.primary.objects[h]
			}
		}
	}
	cfg, err := c.readConfig(ctx, c.primary)
	switch {
	case err == nil:
		c.rep.Repository.ID = cfg.ID
	case errors.Is(err, errMismatch), errors.Is(err, remote.ErrNotFound):
		c.markDamaged(configHandle, errors.Is(err, remote.ErrNotFound))
		c.problem(report.Problem{Copy: c.primary.Location, Kind: KindConfigDamaged, Object: "config",
			Message: fmt.Sprintf("the config cannot be read: %v", err), Action: c.repairAction()})
	default:
		return fmt.Errorf("read config of %s: %w", c.primary.Location, err)
	}
	c.checkKeySet()
	c.plan(nil)
	c.setCopySize(c.primary)
	return parallel(ctx, c.opts.Workers, toHash, func(h remote.Handle) {
		err := c.hashObject(ctx, c.primary, h)
		switch {
		case err == nil:
		case errors.Is(err, errKeyFile):
			c.problem(report.Problem{Copy: c.primary.Location, Kind: KindKeyDamaged, Object: h.String(), Message: err.Error(),
				Action: "the key file matches its name but is no courtbak key file: remove it once you know where it came from (courtbak key list shows the keys that open the repository)"})
		case errors.Is(err, errMismatch):
			c.markDamaged(h, false)
			c.problem(report.Problem{Copy: c.primary.Location, Kind: KindObjectDamaged, Object: h.String(),
				Message: err.Error(), Action: c.repairAction()})
		case ctx.Err() == nil:
			c.problem(report.Problem{Copy: c.primary.Location, Kind: KindObjectUnreadable, Object: h.String(),
				Message: fmt.Sprintf("the object cannot be read: %v", err), Action: "check the storage, then verify again"})
		}
	})
}

// errKeyFile marks a key file whose bytes match its name but that does
// not parse as a key file.
var errKeyFile = errors.New("the key file cannot be parsed")

// checkKeySet reports a primary without key files: nobody can open it,
// whatever its other objects say. The replicas' key files are what repair
// restores (it cannot know which keys a key remove took away on purpose,
// so it restores keys only to a repository that has none).
func (c *checker) checkKeySet() {
	if len(handles(c.primary.objects, remote.Keys)) > 0 {
		return
	}
	c.problem(report.Problem{Copy: c.primary.Location, Kind: KindKeyDamaged, Object: "keys/",
		Message: "the repository has no key files: no password can open it", Action: c.repairAction()})
	for _, cs := range c.replicas {
		for _, h := range handles(cs.objects, remote.Keys) {
			c.markDamaged(h, true)
		}
	}
}

// hashObject reads h from cs and checks it against its name; a key file
// must also parse.
func (c *checker) hashObject(ctx context.Context, cs *copyState, h remote.Handle) error {
	if h.Type == remote.Keys {
		return c.checkKeyFile(ctx, cs, h)
	}
	var (
		sum [32]byte
		n   int64
	)
	err := cs.Backend.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		hs := crypto.NewHasher() // afresh: Load may call again on retry
		var err error
		n, err = io.Copy(hs, rd)
		hs.Sum(sum[:0])
		return err
	})
	if err != nil {
		return err
	}
	c.read(cs, h, n, true)
	if got := hex.EncodeToString(sum[:]); got != h.Name {
		return fmt.Errorf("%w: its %d bytes hash to %s", errMismatch, n, got[:16])
	}
	return nil
}

// checkKeyFile reads a key file, checks it against its name and parses it.
func (c *checker) checkKeyFile(ctx context.Context, cs *copyState, h remote.Handle) error {
	data, err := remote.ReadAll(ctx, cs.Backend, h)
	if err != nil {
		return err
	}
	c.read(cs, h, int64(len(data)), true)
	if err := repo.CheckName(h, data); err != nil {
		return fmt.Errorf("%w: %v", errMismatch, err)
	}
	if _, err := crypto.ParseKeyFile(data); err != nil {
		return fmt.Errorf("%w: %v", errKeyFile, err)
	}
	return nil
}

// readConfig reads and parses the config of cs, and keeps its bytes for
// the comparison of the copies. The config has no hash name: one that
// does not parse, or does not match its own check, counts as damaged.
func (c *checker) readConfig(ctx context.Context, cs *copyState) (repo.Config, error) {
	data, err := remote.ReadAll(ctx, cs.Backend, configHandle)
	if err != nil {
		return repo.Config{}, err
	}
	c.read(cs, configHandle, int64(len(data)), true)
	cfg, err := repo.ParseConfig(data)
	if err != nil {
		return cfg, fmt.Errorf("%w: %v", errMismatch, err)
	}
	cs.config = data
	return cfg, nil
}

// compareConfigs compares the config bytes of the copies whose config
// parses. Every copy of a repository holds the same config, byte for
// byte; configs written before configs carried a check can be damaged in
// their sealed secrets without failing to parse, and only this comparison
// (or the key) sees it. When the other copies agree with each other
// against the primary's, the primary's is damaged and repair replaces it
// with theirs; otherwise which one is damaged takes the key to tell.
func (c *checker) compareConfigs() {
	if c.primary.config == nil {
		return
	}
	votes := map[string][]*copyState{}
	for _, cs := range c.replicas {
		if cs.config != nil && !cs.foreign {
			votes[string(cs.config)] = append(votes[string(cs.config)], cs)
		}
	}
	for variant, copies := range votes {
		if variant == string(c.primary.config) {
			continue
		}
		agree := len(votes[string(c.primary.config)])
		msg := fmt.Sprintf("the config differs from the config at %s", copies[0].Location)
		p := report.Problem{Copy: c.primary.Location, Kind: KindConfigDamaged, Object: "config"}
		if len(copies) > agree+1 {
			c.mu.Lock()
			c.configWant = []byte(variant)
			c.mu.Unlock()
			c.markDamaged(configHandle, false)
			p.Message = fmt.Sprintf("%s and %d other copies, which agree with each other: this copy's config is damaged", msg, len(copies)-1)
			p.Action = c.repairAction()
		} else {
			p.Message = msg + ": one of them is damaged"
			p.Action = "run courtbak verify with the password on each copy: the config of the one that opens is intact; then repair the other with courtbak verify --repair"
		}
		c.problem(p)
	}
}

func (c *checker) setCopySize(cs *copyState) {
	cs.rep.Objects = len(cs.objects)
	cs.rep.Bytes, cs.rep.Packs, cs.rep.PackBytes = 0, 0, 0
	for h, size := range cs.objects {
		cs.rep.Bytes += size
		if h.Type == remote.Data {
			cs.rep.Packs++
			cs.rep.PackBytes += size
		}
	}
}

// listReplica lists a replica's objects; a replica that cannot be opened or
// listed is reported unreachable.
func (c *checker) listReplica(ctx context.Context, cs *copyState) {
	err := cs.OpenErr
	if cs.Backend != nil {
		cs.objects, err = listAll(ctx, cs.Backend)
	}
	if err == nil {
		c.setCopySize(cs)
		return
	}
	cs.objects = nil
	cs.rep.Status = report.StatusUnreachable
	cs.rep.Error = err.Error()
	c.problem(report.Problem{Copy: cs.Location, Kind: KindReplicaUnreachable,
		Message: fmt.Sprintf("the replica cannot be listed: %v", err), Action: "check the replica's URL, credentials and network, then verify again"})
}

// checkReplicas compares every reachable replica with the primary: objects
// missing, damaged (bytes that do not match the name) or extra.
func (c *checker) checkReplicas(ctx context.Context) error {
	c.setCopySize(c.primary)
	for _, cs := range c.replicas {
		if cs.objects == nil {
			continue
		}
		if err := c.checkReplica(ctx, cs); err != nil {
			return err
		}
	}
	if c.r == nil {
		c.compareConfigs()
	}
	return nil
}

func (c *checker) checkReplica(ctx context.Context, cs *copyState) error {
	repairReplica := fmt.Sprintf("repair the replica from the primary: courtbak verify --keyless --repair --repo %s --replica %s", cs.Location, c.primary.Location)
	damaged := func(h remote.Handle, why string) {
		c.mu.Lock()
		cs.rep.Damaged = append(cs.rep.Damaged, h.String())
		c.mu.Unlock()
		c.problem(report.Problem{Copy: cs.Location, Kind: KindObjectDamaged, Object: h.String(), Message: why, Action: repairReplica})
	}
	missing := func(h remote.Handle) {
		c.mu.Lock()
		cs.rep.Missing = append(cs.rep.Missing, h.String())
		c.mu.Unlock()
		c.problem(report.Problem{Copy: cs.Location, Kind: KindObjectMissing, Object: h.String(),
			Message: "the object is missing from the replica", Action: "bring the replica up to date: courtbak replicate --to " + cs.Location})
	}
	if len(cs.objects) == 0 {
		cs.rep.Status = report.StatusUnreachable
		cs.rep.Error = "there is no repository here: nothing was replicated yet, or the URL is wrong"
		c.problem(report.Problem{Copy: cs.Location, Kind: KindReplicaUnreachable, Message: cs.rep.Error,
			Action: "check the URL, or make the replica: courtbak replicate --to " + cs.Location})
		return nil
	}
	// A replica of another repository would make every comparison noise.
	if _, ok := cs.objects[configHandle]; ok {
		cfg, err := c.readConfig(ctx, cs)
		if err == nil && c.r != nil {
			if cerr := c.r.CheckConfig(cs.config); cerr != nil && cfg.ID == c.rep.Repository.ID {
				err = fmt.Errorf("%w: %v", errMismatch, cerr)
			}
		}
		switch {
		case errors.Is(err, errMismatch):
			damaged(configHandle, err.Error())
		case err != nil:
			return c.unreadable(ctx, cs, configHandle, err)
		case c.rep.Repository.ID != "" && cfg.ID != c.rep.Repository.ID:
			cs.foreign = true
			c.problem(report.Problem{Copy: cs.Location, Kind: KindReplicaForeign, Object: "config",
				Message: fmt.Sprintf("the replica is a copy of repository %s, not %s", cfg.ID, c.rep.Repository.ID),
				Action:  "check the replica URL"})
			return nil
		}
	}
	want := map[remote.Handle]bool{}
	for h := range c.primary.objects {
		want[h] = true
	}
	for h := range c.damaged {
		want[h] = true // needed by the primary even where it lacks them
	}
	var toHash []remote.Handle
	for _, h := range handles(want, "") {
		size, ok := cs.objects[h]
		switch primarySize, atPrimary := c.primary.objects[h]; {
		case h == configHandle:
			if !ok {
				missing(h)
			}
		case !ok:
			missing(h)
		case c.readsData(h) || (atPrimary && size != primarySize):
			// A size differing from the primary's is decided by the hash:
			// the damaged copy may be the primary's.
			toHash = append(toHash, h)
		}
	}
	for _, h := range handles(cs.objects, "") {
		if !want[h] {
			cs.rep.Extra = append(cs.rep.Extra, h.String())
		}
	}
	if n := len(cs.rep.Extra); n > 0 {
		c.notice(report.Problem{Copy: cs.Location, Kind: KindObjectsExtra,
			Message: fmt.Sprintf("%d objects are in the replica but not in the primary: pruned at the primary and not yet removed here, or lost at the primary (a keyed verify of the primary tells)", n)})
	}
	return parallel(ctx, c.opts.Workers, toHash, func(h remote.Handle) {
		switch err := c.hashObject(ctx, cs, h); {
		case err == nil:
		case errors.Is(err, errKeyFile):
			c.problem(report.Problem{Copy: cs.Location, Kind: KindKeyDamaged, Object: h.String(), Message: err.Error(),
				Action: "the key file matches its name but is no courtbak key file: report it"})
		case errors.Is(err, errMismatch):
			damaged(h, err.Error())
		case errors.Is(err, remote.ErrNotFound):
			missing(h)
		case ctx.Err() == nil:
			_ = c.unreadable(ctx, cs, h, err)
		}
	})
}

func (c *checker) unreadable(ctx context.Context, cs *copyState, h remote.Handle, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c.problem(report.Problem{Copy: cs.Location, Kind: KindObjectUnreadable, Object: h.String(),
		Message: fmt.Sprintf("the object cannot be read: %v", err), Action: "check the storage, then verify again"})
	return nil
}
