package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newGenManCommand writes a man page per command; the release build runs
// it (goreleaser.yaml) to put the pages into the packages. Hidden: it is a
// build step, not an operator's command.
func newGenManCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "Write the man pages (courtbak.1, courtbak-backup.1, …) into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			date, err := manDate()
			if err != nil {
				return err
			}
			root := c.Root()
			root.DisableAutoGenTag = true
			header := &doc.GenManHeader{Title: "COURTBAK", Section: "1", Date: &date,
				Source: "courtbak " + version, Manual: "courtbak manual"}
			if err := doc.GenManTree(root, header, args[0]); err != nil {
				return fmt.Errorf("write man pages: %w", err)
			}
			g.printf("man pages written to %s\n", args[0])
			return nil
		},
	}
}

// manDate is SOURCE_DATE_EPOCH when set (reproducible builds), else now.
func manDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Now(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: give seconds since 1970", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}
