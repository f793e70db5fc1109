//go:build unix && !linux

package restorer

import (
	"time"

	"golang.org/x/sys/unix"
)

// futimes sets the atime and mtime of the open file or directory fd to t,
// to the microsecond (futimes(2)).
func futimes(fd int, t time.Time) error {
	ts, err := timespecs(t)
	if err != nil {
		return err
	}
	tv := unix.NsecToTimeval(ts[0].Nano())
	return unix.Futimes(fd, []unix.Timeval{tv, tv})
}
