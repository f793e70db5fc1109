//go:build unix

package restorer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fdDir is a directory opened with O_NOFOLLOW; every call below works
// relative to its descriptor and never follows a symlink.
type fdDir struct {
	fd int
	p  string
}

// openTarget creates the target directory if needed and opens it. The
// operator named it, so symlinks on the way to it are followed; nothing
// below it is.
func openTarget(p string) (dirHandle, error) {
	if err := os.MkdirAll(p, 0o700); err != nil {
		return nil, fmt.Errorf("create target %s: %w", p, err)
	}
	fd, err := retry(func() (int, error) {
		return unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, &os.PathError{Op: "open target", Path: p, Err: err}
	}
	return &fdDir{fd: fd, p: p}, nil
}

func (d *fdDir) path() string { return d.p }

func (d *fdDir) openDir(name string) (int, error) {
	return retry(func() (int, error) {
		return unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
}

func (d *fdDir) enter(name string) (dirHandle, error) {
	p := filepath.Join(d.p, name)
	fd, err := d.openDir(name)
	if errors.Is(err, unix.ENOENT) {
		if err := unix.Mkdirat(d.fd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, &os.PathError{Op: "mkdir", Path: p, Err: err}
		}
		fd, err = d.openDir(name)
	}
	if err != nil {
		// O_NOFOLLOW refuses a symlink with ELOOP on Linux and macOS and
		// EMLINK on FreeBSD: look at what is there to say which it was.
		var st unix.Stat_t
		if unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFLNK:
				return nil, fmt.Errorf("%s %w", p, ErrSymlinkInTarget)
			case unix.S_IFDIR:
			default:
				return nil, fmt.Errorf("%s exists and is not a directory; the snapshot has a directory there (move it away, or restore into an empty directory)", p)
			}
		}
		return nil, &os.PathError{Op: "open directory", Path: p, Err: err}
	}
	return &fdDir{fd: fd, p: p}, nil
}

func (d *fdDir) makeWritable() error {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: d.p, Err: err}
	}
	if st.Mode&0o700 == 0o700 {
		return nil
	}
	if err := unix.Fchmod(d.fd, uint32(st.Mode&0o7777|0o700)); err != nil {
		return &os.PathError{Op: "chmod", Path: d.p, Err: err}
	}
	return nil
}

func (d *fdDir) createTemp() (*os.File, string, error) {
	for range 10 {
		name := tempName()
		fd, err := retry(func() (int, error) {
			return unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		})
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, "", &os.PathError{Op: "create", Path: filepath.Join(d.p, name), Err: err}
		}
		return os.NewFile(uintptr(fd), filepath.Join(d.p, name)), name, nil
	}
	return nil, "", fmt.Errorf("create a temporary file in %s: names keep colliding", d.p)
}

func (d *fdDir) fileTimes(f *os.File, _ string, t time.Time) error {
	if err := futimes(int(f.Fd()), t); err != nil {
		return &os.PathError{Op: "set times", Path: f.Name(), Err: err}
	}
	return nil
}

func (d *fdDir) rename(from, to string) error {
	if err := unix.Renameat(d.fd, from, d.fd, to); err != nil {
		return &os.LinkError{Op: "rename", Old: filepath.Join(d.p, from), New: filepath.Join(d.p, to), Err: err}
	}
	return nil
}

func (d *fdDir) remove(name string) error {
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return &os.PathError{Op: "remove", Path: filepath.Join(d.p, name), Err: err}
	}
	return nil
}

func (d *fdDir) symlink(target string, t time.Time) (string, error) {
	for range 10 {
		name := tempName()
		err := unix.Symlinkat(target, d.fd, name)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", &os.PathError{Op: "symlink", Path: filepath.Join(d.p, name), Err: err}
		}
		ts, err := timespecs(t)
		if err == nil {
			err = unix.UtimesNanoAt(d.fd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			_ = unix.Unlinkat(d.fd, name, 0)
			return "", &os.PathError{Op: "set times", Path: filepath.Join(d.p, name), Err: err}
		}
		return name, nil
	}
	return "", fmt.Errorf("create a temporary symlink in %s: names keep colliding", d.p)
}

// hardlinks: Unix builds restore hard links.
const hardlinks = true

func fileIDOf(fi fs.FileInfo) fileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
}

func (d *fdDir) link(old dirHandle, oldName string, id fileID, name string) error {
	o, ok := old.(*fdDir)
	if !ok {
		return errors.ErrUnsupported
	}
	oldPath := filepath.Join(o.p, oldName)
	var st unix.Stat_t
	if err := unix.Fstatat(o.fd, oldName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "stat", Path: oldPath, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || (fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}) != id {
		return fmt.Errorf("%s is no longer the file this restore wrote; not linking to it", oldPath)
	}
	for range 10 {
		tmp := tempName()
		err := unix.Linkat(o.fd, oldName, d.fd, tmp, 0)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "link", Old: oldPath, New: filepath.Join(d.p, name), Err: err}
		}
		if err := d.rename(tmp, name); err != nil {
			_ = unix.Unlinkat(d.fd, tmp, 0)
			return err
		}
		return nil
	}
	return fmt.Errorf("create a temporary link in %s: names keep colliding", d.p)
}

func (d *fdDir) setMeta(mode fs.FileMode, mtime time.Time) error {
	if err := unix.Fchmod(d.fd, unixMode(mode)); err != nil {
		return &os.PathError{Op: "chmod", Path: d.p, Err: err}
	}
	if err := futimes(d.fd, mtime); err != nil {
		return &os.PathError{Op: "set times", Path: d.p, Err: err}
	}
	return nil
}

func (d *fdDir) close() error { return unix.Close(d.fd) }

// unixMode converts the permission and special bits of m to st_mode bits.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		u |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		u |= unix.S_ISVTX
	}
	return u
}

// timespecs is t as the atime and mtime of utimensat(2).
func timespecs(t time.Time) ([]unix.Timespec, error) {
	ts, err := unix.TimeToTimespec(t)
	if err != nil {
		return nil, fmt.Errorf("time %v: %w", t, err)
	}
	return []unix.Timespec{ts, ts}, nil
}

// retry repeats a call interrupted by a signal.
func retry(f func() (int, error)) (int, error) {
	for {
		fd, err := f()
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}
