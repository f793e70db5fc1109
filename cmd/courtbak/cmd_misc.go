package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// Set by the release build (goreleaser ldflags).
var (
	version = "dev"
	commit  = ""
)

func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

func versionString() string { return "courtbak " + version }

func newVersionCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version, commit, Go version and platform",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if g.json {
				return g.printJSON(map[string]string{"version": version, "commit": buildCommit(), "go_version": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH})
			}
			fmt.Fprintf(g.stdout, "courtbak %s (commit %s) built with %s for %s/%s\n", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

func newStatsCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Show sizes: logical, stored, deduplication ratio, object counts",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			r, err := g.openRepoIndexed(ctx)
			if err != nil {
				return err
			}
			snaps, err := r.Snapshots(ctx)
			if err != nil {
				return err
			}
			st, err := r.Stats(ctx, snaps)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(st)
			}
			if g.quiet {
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "Repository:\t%s\n", r.ID())
			fmt.Fprintf(tw, "Snapshots:\t%d\n", st.Snapshots)
			fmt.Fprintf(tw, "Files (all snapshots):\t%d\n", st.Files)
			fmt.Fprintf(tw, "Logical size:\t%s\n", formatBytes(st.LogicalBytes))
			fmt.Fprintf(tw, "Unique data:\t%s\n", formatBytes(st.UniqueBytes))
			fmt.Fprintf(tw, "Stored size:\t%s\n", formatBytes(st.StoredBytes))
			fmt.Fprintf(tw, "Deduplication ratio:\t%.2f\n", st.DedupRatio)
			fmt.Fprintf(tw, "Blobs:\t%d data, %d tree (%d indexed)\n", st.DataBlobs, st.TreeBlobs, st.IndexedBlobs)
			fmt.Fprintf(tw, "Objects:\t%d %s, %d index %s, %d %s\n", st.Packs, countNoun(st.Packs, "pack", "packs"),
				st.IndexFiles, countNoun(st.IndexFiles, "file", "files"), st.KeyFiles, countNoun(st.KeyFiles, "key", "keys"))
			return tw.Flush()
		},
	}
}

func newKeyCommand(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "key", Short: "Manage the passwords that open the repository"}
	var newPwFile string
	var kdf kdfFlags
	list := &cobra.Command{
		Use: "list", Short: "List keys", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			r, err := g.openRepo(c.Context())
			if err != nil {
				return err
			}
			keys, err := r.Keys(c.Context())
			if err != nil {
				return err
			}
			if g.json {
				out := []map[string]any{}
				for _, k := range keys {
					out = append(out, map[string]any{"id": k.ID, "current": k.Current, "host": k.File.Host, "user": k.File.User, "created": k.File.Created.Format(time.RFC3339)})
				}
				return g.printJSON(out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, " \tID\tUser\tHost\tCreated")
			for _, k := range keys {
				mark := " "
				if k.Current {
					mark = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", mark, k.ID[:8], k.File.User, k.File.Host, k.File.Created.Local().Format("2006-01-02 15:04:05"))
			}
			return tw.Flush()
		},
	}
	add := &cobra.Command{
		Use: "add", Short: "Add a password (from --new-password-file, COURTBAK_NEW_PASSWORD, or asked)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := kdf.params().Validate(); err != nil {
				return err
			}
			r, err := g.openRepo(c.Context())
			if err != nil {
				return err
			}
			pw, err := g.newPassword("New password: ", newPwFile)
			if err != nil {
				return err
			}
			id, err := r.AddKey(c.Context(), pw, kdf.params())
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]string{"id": id})
			}
			g.printf("added key %s\n", id[:8])
			return nil
		},
	}
	remove := &cobra.Command{
		Use: "remove ID", Short: "Remove a key (not the one in use, never the last)", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			r, err := g.openRepo(c.Context())
			if err != nil {
				return err
			}
			if err := r.RemoveKey(c.Context(), args[0]); err != nil {
				return err
			}
			g.printf("removed key %s\n", args[0])
			return nil
		},
	}
	passwd := &cobra.Command{
		Use: "passwd", Short: "Change the password in use", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := kdf.params().Validate(); err != nil {
				return err
			}
			r, err := g.openRepo(c.Context())
			if err != nil {
				return err
			}
			pw, err := g.newPassword("New password: ", newPwFile)
			if err != nil {
				return err
			}
			id, err := r.ChangePassword(c.Context(), pw, kdf.params())
			if err != nil {
				return err
			}
			g.printf("password changed; new key %s\n", id[:8])
			return nil
		},
	}
	for _, sub := range []*cobra.Command{add, passwd} {
		sub.Flags().StringVar(&newPwFile, "new-password-file", "", "read the new password from `FILE` (else COURTBAK_NEW_PASSWORD, else asked)")
		kdf.register(sub)
	}
	c.AddCommand(list, add, remove, passwd)
	return c
}
