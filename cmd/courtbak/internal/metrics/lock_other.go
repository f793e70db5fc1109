//go:build !unix

package metrics

import "os"

// lock cannot lock here: two runs finishing at the same instant may then
// lose one's samples from the file until the next run of that command.
func lock(*os.File) error { return nil }
