//go:build unix

package table

import (
	"syscall"
	"time"
)

// cpuTime is the process's user and system CPU time: on a loaded machine
// it measures a benchmark's own work where wall time does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
