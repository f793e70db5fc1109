package main

import (
	"os"
	"path/filepath"
)

// writeReportAtomic replaces path with data, readable by its owner only
// (the contract: reports are created 0600).
func writeReportAtomic(path string, data []byte) error {
	return writeFileAtomic(path, data, 0o600)
}

// writeFileAtomic replaces path with data and mode, so that a reader never
// sees half a file. The temporary file is created 0600, so data is never
// readable by others on the way, and synced before the rename, so a crash
// leaves the old file or the whole new one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".courtbak-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
