package archiver

import (
	"io/fs"
	"syscall"
	"time"
)

// fileIdentity is what tells an unchanged file from a changed one without
// reading it.
type fileIdentity struct {
	ctime    time.Time
	inode    uint64
	device   uint64
	links    uint64
	uid, gid uint32
}

func identity(fi fs.FileInfo) fileIdentity {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileIdentity{}
	}
	return fileIdentity{
		ctime:  time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec)),
		inode:  uint64(st.Ino),
		device: uint64(st.Dev),
		links:  uint64(st.Nlink),
		uid:    st.Uid,
		gid:    st.Gid,
	}
}
