package main

import (
	"context"
	"fmt"
	"io/fs"
	"sync"

	"github.com/schollz/progressbar/v3"

	"github.com/courtbak/courtbak/repo/archiver"
)

// backupProgress draws backup's progress bar: bytes and files done of the
// totals, rate and ETA. The totals come from a scan that runs ahead of the
// backup over the same selection (archiver.Scan, which reads no
// contents); until it ends they show as still growing.
type backupProgress struct {
	bar *progressbar.ProgressBar

	mu                    sync.Mutex
	filesDone, filesTotal int64
	bytesTotal            int64
	scanned               bool
	stop                  context.CancelFunc
	scanDone              chan struct{}
}

// newBackupProgress returns nil unless progress may be drawn (a terminal
// on stderr, neither --quiet nor --json).
func (g *globals) newBackupProgress(ctx context.Context, opts archiver.Options) *backupProgress {
	bar := g.bytesBar(-1, "backup")
	if bar == nil {
		return nil
	}
	p := &backupProgress{bar: bar, scanDone: make(chan struct{})}
	ctx, p.stop = context.WithCancel(ctx)
	opts.OnError = nil // the backup itself reports unreadable files
	go func() {
		defer close(p.scanDone)
		err := archiver.Scan(ctx, opts, func(_ string, fi fs.FileInfo) error {
			if fi.Mode().IsRegular() {
				p.mu.Lock()
				p.filesTotal++
				p.bytesTotal += fi.Size()
				p.mu.Unlock()
			}
			return nil
		})
		p.mu.Lock()
		defer p.mu.Unlock()
		if err == nil {
			p.scanned = true
			p.bar.ChangeMax64(max(p.bytesTotal, 1))
		}
		p.describe()
	}()
	return p
}

// describe sets the files part of the bar; the caller holds p.mu.
func (p *backupProgress) describe() {
	more := "+"
	if p.scanned {
		more = ""
	}
	p.bar.Describe(fmt.Sprintf("backup: %d/%d%s files", p.filesDone, p.filesTotal, more))
}

func (p *backupProgress) addBytes(n int64) { _ = p.bar.Add64(n) }

func (p *backupProgress) fileDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.filesDone++
	p.describe()
}

// finish stops the scan if it still runs and clears the bar.
func (p *backupProgress) finish() {
	p.stop()
	<-p.scanDone
	_ = p.bar.Finish()
}
