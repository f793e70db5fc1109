//go:build !unix

// Package cputime reads the process's CPU time, for benchmarks: on a
// loaded machine it measures a benchmark's own work where wall time
// measures the load.
package cputime

import "time"

// Process is the process's user and system CPU time so far (0 where the
// system does not tell).
func Process() time.Duration { return 0 }
