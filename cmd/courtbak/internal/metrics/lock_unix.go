//go:build unix

package metrics

import (
	"os"
	"syscall"
)

// lock takes an exclusive advisory lock on f, waiting for it; it dies with
// the process.
func lock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }
