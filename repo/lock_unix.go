//go:build unix

package repo

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on f, waiting for it or not.
// The lock dies with the process, however it ends.
func lockFile(f *os.File, wait bool) error {
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	return syscall.Flock(int(f.Fd()), how)
}
