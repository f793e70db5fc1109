// Command scale fabricates a large courtbak repository quickly, so that the
// normal courtbak binary can be measured against 10^6, 10^7 or 10^8
// indexed blobs (bench/README.md):
//
//	COURTBAK_PASSWORD=... go run ./bench/scale -blobs N -out DIR
//
// The repository is real: every blob is a real sealed blob in a real pack,
// every index file, tree and snapshot is what a backup writes, and verify,
// restore, forget and prune work on it. Only the blobs are tiny (16 bytes
// of plaintext each), so that 10^8 of them fit on a disk: a file of the
// snapshots has -blobs-per-file of them, 100 files make a directory, and
// the blobs are spread over -snapshots snapshots of /scale on the host
// "scale", each holding only its own /scale/partNNN, so that forgetting
// half of them (forget --keep-last) leaves half of the packs unused.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/zeebo/blake3"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/snapshot"
)

const filesPerDir = 100

func main() {
	blobs := flag.Int64("blobs", 1_000_000, "number of data blobs to store and index")
	out := flag.String("out", "", "directory of the new repository (must not hold one)")
	perFile := flag.Int("blobs-per-file", 1000, "data blobs per file")
	snapshots := flag.Int("snapshots", 0, "number of snapshots (default: one per million blobs, 2 to 100)")
	packSize := flag.Int("pack-size", 64<<10, "target pack size in bytes (courtbak's default is 16 MiB; tiny blobs need small packs to keep the blobs per pack realistic)")
	flag.Parse()
	if err := run(*blobs, *out, *perFile, *snapshots, *packSize); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func run(n int64, out string, perFile, snapshots, packSize int) error {
	pw := os.Getenv("COURTBAK_PASSWORD")
	switch {
	case out == "":
		return errors.New("-out DIR is required")
	case pw == "":
		return errors.New("set COURTBAK_PASSWORD to the new repository's password")
	case n < 1 || perFile < 1 || packSize < 4096:
		return errors.New("-blobs and -blobs-per-file must be positive, -pack-size at least 4096")
	}
	if snapshots <= 0 {
		snapshots = int(min(100, max(2, n/1_000_000)))
	}
	ctx := context.Background()
	be, err := remote.OpenLocal(out)
	if err != nil {
		return err
	}
	r, err := repo.Init(ctx, be, []byte(pw), repo.InitOptions{}, repo.Options{PackSize: packSize})
	if err != nil {
		return err
	}
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return err
	}
	g := &gen{r: r, seed: seed, perFile: perFile, when: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	start := time.Now()
	for s := range snapshots {
		from, to := n*int64(s)/int64(snapshots), n*int64(s+1)/int64(snapshots)
		if err := g.snapshot(ctx, s, from, to); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "scale: snapshot %d/%d: blobs %d to %d (%s)\n", s+1, snapshots, from, to, time.Since(start).Round(time.Second))
	}
	fmt.Printf("repository %s at %s: %d data blobs in %d snapshots, %d blobs a file\n", r.ID(), out, n, snapshots, perFile)
	return nil
}

type gen struct {
	r       *repo.Repository
	seed    [8]byte
	perFile int
	when    time.Time
}

// plaintext of data blob i: unique, so every blob is stored once.
func (g *gen) plaintext(i int64) []byte {
	b := make([]byte, 16)
	copy(b, g.seed[:])
	binary.LittleEndian.PutUint64(b[8:], uint64(i))
	return b
}

// snapshot stores blobs [from, to) in files of one snapshot.
func (g *gen) snapshot(ctx context.Context, s int, from, to int64) error {
	saver := g.r.NewSaver(ctx, 2)
	fail := func(err error) error {
		_ = saver.Flush(ctx)
		return err
	}
	saveTree := func(t *snapshot.Tree) (blob.ID, error) {
		data, err := snapshot.EncodeTree(t)
		if err != nil {
			return blob.ID{}, err
		}
		id := g.r.BlobID(data)
		_, err = saver.SaveBlob(blob.Tree, id, data)
		return id, err
	}
	var top, dir snapshot.Tree
	flushDir := func() error {
		if len(dir.Nodes) == 0 {
			return nil
		}
		id, err := saveTree(&dir)
		if err != nil {
			return err
		}
		top.Nodes = append(top.Nodes, g.dirNode(fmt.Sprintf("d%06d", len(top.Nodes)), id))
		dir = snapshot.Tree{}
		return nil
	}
	for i := from; i < to; {
		end := min(to, i+int64(g.perFile))
		node := snapshot.Node{Name: fmt.Sprintf("f%04d.bin", len(dir.Nodes)), Type: snapshot.NodeFile, Mode: 0o644, ModTime: g.when}
		h := blake3.New()
		for ; i < end; i++ {
			pt := g.plaintext(i)
			id := g.r.BlobID(pt)
			if _, err := saver.SaveBlob(blob.Data, id, pt); err != nil {
				return fail(err)
			}
			_, _ = h.Write(pt)
			node.Content = append(node.Content, id)
			node.Size += uint64(len(pt))
		}
		sum := blob.ID(h.Sum(nil))
		node.BLAKE3 = &sum
		dir.Nodes = append(dir.Nodes, node)
		if len(dir.Nodes) == filesPerDir {
			if err := flushDir(); err != nil {
				return fail(err)
			}
		}
	}
	if err := flushDir(); err != nil {
		return fail(err)
	}
	topID, err := saveTree(&top)
	if err != nil {
		return fail(err)
	}
	name := fmt.Sprintf("part%03d", s)
	scaleID, err := saveTree(&snapshot.Tree{Nodes: []snapshot.Node{g.dirNode(name, topID)}})
	if err != nil {
		return fail(err)
	}
	rootID, err := saveTree(&snapshot.Tree{Nodes: []snapshot.Node{g.dirNode("scale", scaleID)}})
	if err != nil {
		return fail(err)
	}
	if err := saver.Flush(ctx); err != nil {
		return err
	}
	sn := &snapshot.Snapshot{Time: g.when.Add(time.Duration(s) * time.Hour), Hostname: "scale", Paths: []string{"/scale"}, Tree: rootID, Program: "courtbak bench/scale"}
	if err := g.r.SaveSnapshot(ctx, sn); err != nil {
		return err
	}
	g.r.ResetIndex() // every blob is new: the next snapshot needs no index
	return nil
}

func (g *gen) dirNode(name string, id blob.ID) snapshot.Node {
	return snapshot.Node{Name: name, Type: snapshot.NodeDir, Mode: fs.ModeDir | 0o755, ModTime: g.when, Subtree: &id}
}
