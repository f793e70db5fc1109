package main

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/courtbak/courtbak/cmd/courtbak/internal/metrics"
	"github.com/courtbak/courtbak/remote"
)

// runMetrics is what a command counted, for --metrics-file; commands set
// what they know and leave the rest.
type runMetrics struct {
	files, bytes, bytesAdded, errors *float64
	latestSnapshot                   time.Time
	replicaSynced                    map[string]time.Time
}

func count[T int | int64](v T) *float64 {
	f := float64(v)
	return &f
}

// writeMetrics records the finished command in --metrics-file.
func (g *globals) writeMetrics(cmd *cobra.Command, start time.Time, code int) error {
	m := g.metrics
	return metrics.Write(g.metricsFile, metrics.Run{
		Command:    strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "),
		Repository: remote.Redact(g.repoURL),
		Start:      start,
		Duration:   time.Since(start),
		ExitCode:   code,
		Files:      m.files, Bytes: m.bytes, BytesAdded: m.bytesAdded, Errors: m.errors,
		LatestSnapshot: m.latestSnapshot,
		ReplicaSynced:  m.replicaSynced,
	})
}
