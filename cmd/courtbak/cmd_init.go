package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/courtbak/courtbak/chunking"
	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
)

type kdfFlags struct {
	memoryKiB uint32
	time      uint32
}

func (k *kdfFlags) register(c *cobra.Command) {
	c.Flags().Uint32Var(&k.memoryKiB, "kdf-memory", crypto.DefaultKDF.MemoryKiB, "argon2id memory in `KiB` for the new key (minimum 8192)")
	c.Flags().Uint32Var(&k.time, "kdf-time", crypto.DefaultKDF.Time, "`N` argon2id passes for the new key")
}

func (k *kdfFlags) params() crypto.KDFParams {
	return crypto.KDFParams{Time: k.time, MemoryKiB: k.memoryKiB, Threads: crypto.DefaultKDF.Threads}
}

func newInitCommand(g *globals) *cobra.Command {
	var kdf kdfFlags
	var chunkSize string
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a repository at --repo",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if err := kdf.params().Validate(); err != nil {
				return err
			}
			var avg uint64
			if chunkSize != "" {
				var err error
				if avg, err = parseSize(chunkSize); err != nil {
					return fmt.Errorf("--chunk-size: %w", err)
				}
				if _, err := (chunking.Params{}).WithAverage(avg); err != nil {
					return fmt.Errorf("--chunk-size: %w", err)
				}
			}
			be, err := g.openBackend(ctx, g.repoURL)
			if err != nil {
				return err
			}
			if err := remote.CreateBucketIfMissing(ctx, be); err != nil {
				return err
			}
			pw, err := g.password(true)
			if err != nil {
				return err
			}
			r, err := repo.Init(ctx, be, pw, repo.InitOptions{KDF: kdf.params(), AverageChunkSize: avg}, g.repoOptions())
			if errors.Is(err, repo.ErrExists) || errors.Is(err, repo.ErrNotEmpty) {
				return fmt.Errorf("%w; nothing was changed", err)
			}
			if err != nil {
				return fmt.Errorf("init %s: %w", be.Location(), err)
			}
			if g.json {
				return g.printJSON(map[string]string{"repository_id": r.ID(), "location": be.Location()})
			}
			if g.quiet {
				return nil
			}
			fmt.Fprintf(g.stdout, "created courtbak repository %s at %s\n", r.ID(), be.Location())
			fmt.Fprintln(g.stdout, "Keep the password safe: without it the data cannot be read.")
			return nil
		},
	}
	kdf.register(c)
	c.Flags().StringVar(&chunkSize, "chunk-size", "", "average chunk `SIZE` (a power of two from 1KiB to 16MiB, e.g. 4MiB; default 1MiB): larger chunks mean fewer blobs to index")
	return c
}

// parseSize reads a byte size: a whole number with an optional unit, B,
// KiB, MiB, GiB (K, M, G and KB, MB, GB mean the same binary units).
func parseSize(s string) (uint64, error) {
	num := strings.TrimRightFunc(s, unicode.IsLetter)
	unit := strings.ToLower(s[len(num):])
	mult := map[string]uint64{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}[unit]
	n, err := strconv.ParseUint(strings.TrimSpace(num), 10, 64)
	if err != nil || mult == 0 || n > math.MaxUint64/mult {
		return 0, fmt.Errorf("%q is not a size like 4MiB", s)
	}
	return n * mult, nil
}
