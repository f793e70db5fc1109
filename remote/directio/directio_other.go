//go:build !linux

package directio

import (
	"errors"
	"os"
	"unsafe"
)

var errRefused = errors.New("direct I/O refused")

// SupportedDir reports whether files written under dir go around the page
// cache: never on this system.
func SupportedDir(string) bool { return false }

func supported(*os.File) bool { return false }

func writeDirect(*os.File, []byte, int64) error { return errRefused }

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
