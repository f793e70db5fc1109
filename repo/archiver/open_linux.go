package archiver

import (
	"os"
	"syscall"
)

// openNoAtime opens a file without updating its access time where the
// caller may (owner or root), so backups do not churn source metadata.
func openNoAtime(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOATIME, 0)
	if err == nil {
		return f, nil
	}
	return os.Open(path)
}
