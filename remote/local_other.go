//go:build !linux

package remote

// syncWrites is 0 here: objects' files are fsynced once written.
const syncWrites = 0
