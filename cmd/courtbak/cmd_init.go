package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

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
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a repository at --repo",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if err := kdf.params().Validate(); err != nil {
				return err
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
			r, err := repo.Init(ctx, be, pw, repo.InitOptions{KDF: kdf.params()}, g.repoOptions())
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
	return c
}
