package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/snapshot"
)

func newTagCommand(g *globals) *cobra.Command {
	var (
		add, remove, set []string
		filter           snapshotFilter
	)
	c := &cobra.Command{
		Use:   "tag SNAPSHOT... [--add TAG] [--remove TAG] [--set TAG]",
		Short: "Change the tags of existing snapshots (e.g. legal-hold)",
		Long: `Change the tags of existing snapshots. Snapshots never change once written, so
each one is stored again with the new tags (and an "original" field naming the
backup's own snapshot), and only then is the old one removed: that needs
delete rights, as forget does. Its id changes; its time, host, paths and
contents do not. Hold a hearing's recordings with --add legal-hold and
'forget --keep-tag legal-hold'.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			replace := c.Flags().Changed("set")
			// --set '' clears every tag.
			set = slices.DeleteFunc(set, func(t string) bool { return t == "" })
			if !replace && len(add) == 0 && len(remove) == 0 {
				return errors.New("give --add TAG, --remove TAG or --set TAG (--set '' removes every tag)")
			}
			for _, t := range slices.Concat(add, remove) {
				if strings.TrimSpace(t) == "" {
					return errors.New("a tag cannot be empty")
				}
			}
			r, err := g.openRepoIndexed(ctx)
			if err != nil {
				return err
			}
			snaps, err := r.Snapshots(ctx)
			if err != nil {
				return err
			}
			var targets []*snapshot.Snapshot
			for _, ref := range args {
				sn, err := resolveSnapshot(snaps, ref, &filter)
				if err != nil {
					return err
				}
				if !slices.Contains(targets, sn) {
					targets = append(targets, sn)
				}
			}
			type changeJSON struct {
				OldID    string   `json:"old_id"`
				NewID    string   `json:"new_id,omitempty"`
				Original string   `json:"original,omitempty"`
				Tags     []string `json:"tags"`
				Changed  bool     `json:"changed"`
			}
			var changes []changeJSON
			var failed []error
			for _, old := range targets {
				sn, changed := old.Retag(set, replace, add, remove)
				ch := changeJSON{OldID: old.ID.String(), Tags: append([]string{}, sn.Tags...), Changed: changed}
				if !changed {
					g.printf("snapshot %s: tags unchanged (%s)\n", old.ID.Short(), tagList(sn.Tags))
					changes = append(changes, ch)
					continue
				}
				err := r.ReplaceSnapshot(ctx, old.ID, sn)
				if err != nil && !errors.Is(err, repo.ErrOldSnapshotKept) {
					return fmt.Errorf("snapshot %s: %w; nothing was changed", old.ID.Short(), err)
				}
				ch.NewID, ch.Original = sn.ID.String(), sn.Original.String()
				changes = append(changes, ch)
				if err != nil {
					failed = append(failed, fmt.Errorf("snapshot %s was saved as %s with tags %s, but the old snapshot could not be removed (it stays, with its old tags, until removed by someone with delete rights: courtbak forget or tag again): %w",
						old.ID.Short(), sn.ID.Short(), tagList(sn.Tags), err))
					continue
				}
				g.printf("snapshot %s: tags %s; saved as %s\n", old.ID.Short(), tagList(sn.Tags), sn.ID.Short())
			}
			if g.json {
				if err := g.printJSON(changes); err != nil {
					return err
				}
			}
			return errors.Join(failed...)
		},
	}
	c.Flags().StringArrayVar(&add, "add", nil, "add `TAG` (repeatable)")
	c.Flags().StringArrayVar(&remove, "remove", nil, "remove `TAG` (repeatable)")
	c.Flags().StringArrayVar(&set, "set", nil, "replace all tags with `TAG` (repeatable; --set '' removes every tag)")
	filter.register(c)
	return c
}

func tagList(tags []string) string {
	if len(tags) == 0 {
		return "(none)"
	}
	return strings.Join(tags, ", ")
}
