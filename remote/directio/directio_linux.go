package directio

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

// errRefused means the kernel refused a direct write before writing
// anything; the caller writes through the page cache instead.
var errRefused = errors.New("direct I/O refused")

// File systems whose O_DIRECT is known to be fast and safe to mix with
// buffered writes of a file's tail. Network and FUSE file systems are left
// to the page cache: their direct I/O is often synchronous per request.
var directFS = map[int64]bool{
	0xEF53:     true, // ext2, ext3, ext4
	0x58465342: true, // XFS
	0x9123683E: true, // btrfs
	0x2FC12FC1: true, // ZFS
	0xF2F52010: true, // F2FS
}

// SupportedDir reports whether files written under dir, or under its
// nearest existing parent, go around the page cache.
func SupportedDir(dir string) bool {
	for {
		var st syscall.Statfs_t
		err := syscall.Statfs(dir, &st)
		if err == nil {
			return directFS[int64(st.Type)]
		}
		parent := filepath.Dir(dir)
		if err != syscall.ENOENT || parent == dir {
			return false
		}
		dir = parent
	}
}

func supported(f *os.File) bool {
	var st syscall.Statfs_t
	if err := syscall.Fstatfs(int(fd(f)), &st); err != nil {
		return false
	}
	return directFS[int64(st.Type)]
}

func fd(f *os.File) uintptr {
	var out uintptr
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { out = fd })
	}
	return out
}

// writeDirect writes b (aligned, whole blocks) at off with O_DIRECT set for
// the duration of the call.
func writeDirect(f *os.File, b []byte, off int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return errRefused
	}
	var werr error
	cerr := rc.Control(func(fd uintptr) {
		flags, err := fcntl(fd, syscall.F_GETFL, 0)
		if err != nil {
			werr = errRefused
			return
		}
		if _, err := fcntl(fd, syscall.F_SETFL, flags|syscall.O_DIRECT); err != nil {
			werr = errRefused
			return
		}
		defer func() { _, _ = fcntl(fd, syscall.F_SETFL, flags) }()
		done := 0
		for done < len(b) {
			n, err := syscall.Pwrite(int(fd), b[done:], off+int64(done))
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				if done == 0 && err == syscall.EINVAL {
					werr = errRefused
				} else {
					werr = err
				}
				return
			}
			if n == 0 {
				werr = syscall.EIO
				return
			}
			done += n
			if done%Block != 0 {
				// A short write ended off a block boundary: the rest
				// cannot go directly.
				_, _ = fcntl(fd, syscall.F_SETFL, flags)
			}
		}
	})
	if cerr != nil {
		return errRefused
	}
	return werr
}

func fcntl(fd uintptr, cmd, arg int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, uintptr(cmd), uintptr(arg))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
