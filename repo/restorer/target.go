package restorer

import (
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"time"
)

// dirHandle is an open directory of the restore target. Every change
// restore makes is relative to a handle it opened itself, so no path is
// resolved again after it was checked: a directory, file or symlink an
// attacker plants or swaps in meanwhile is never followed.
//
// On Unix (target_unix.go) no symlink below the target is followed at all.
// Elsewhere (target_other.go, os.Root) nothing outside the target is
// reached, but a symlink inside it that stays inside it may be followed.
type dirHandle interface {
	// enter opens the subdirectory name, creating it with mode 0700 if it
	// is missing. It fails with ErrSymlinkInTarget, naming the path, if
	// name is a symlink, and with an error if it is not a directory.
	enter(name string) (dirHandle, error)
	// makeWritable gives the owner write and search permission on this
	// directory if it lacks them (a read-only directory restored by an
	// earlier run), until setMeta sets its recorded mode.
	makeWritable() error
	// createTemp creates a new, empty file with a unique hidden name,
	// writable only by its owner, and returns it with that name.
	createTemp() (*os.File, string, error)
	// fileTimes sets the mtime and atime of f, a file createTemp returned
	// as name, on its handle where the platform allows it.
	fileTimes(f *os.File, name string, t time.Time) error
	// rename replaces the entry to (a file or a symlink, never followed)
	// with from, atomically.
	rename(from, to string) error
	// remove deletes the file or symlink name.
	remove(name string) error
	// symlink creates a symlink to target at a unique hidden name, with
	// mtime t where the platform allows it, and returns that name.
	symlink(target string, t time.Time) (string, error)
	// link makes name a hard link of oldName in old, replacing what is at
	// name (never following it), provided oldName is still the file id,
	// written by this restore.
	link(old dirHandle, oldName string, id fileID, name string) error
	// setMeta sets the directory's own mode (with the setuid, setgid and
	// sticky bits) and mtime.
	setMeta(mode fs.FileMode, mtime time.Time) error
	// path is the directory's path, for messages.
	path() string
	close() error
}

// fileID identifies a restored file on its file system (device and inode),
// so that a hard link is only ever made to the file restore wrote.
type fileID struct{ dev, ino uint64 }

// tempName returns a new hidden name for a file restore writes before
// renaming it into place. It is short, whatever the final name's length.
func tempName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return ".courtbak-restore-" + hex.EncodeToString(b[:])
}

// specialBits are the mode bits besides the permissions that restore sets.
const specialBits = fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// restoredMode is the part of a recorded mode that restore sets.
func restoredMode(m fs.FileMode) fs.FileMode { return m.Perm() | m&specialBits }
