package restorer

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futimes sets the atime and mtime of the open file or directory fd to t,
// to the nanosecond. It is futimens(3): utimensat with a NULL path acts on
// fd itself, which golang.org/x/sys/unix does not expose.
func futimes(fd int, t time.Time) error {
	ts, err := timespecs(t)
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
