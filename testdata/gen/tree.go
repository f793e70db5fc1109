// Package gen generates deterministic trees of court recordings for tests,
// the demo and benchmarks: large incompressible MP4/WAV-like media, exact
// copies, a growing recording, remuxes and many small compressible case files.
package gen

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Options describe the tree Generate writes.
type Options struct {
	Seed       int64 // same seed → byte-identical tree
	TotalBytes int64 // approximate total size of the tree (media dominates)
	MediaFiles int   // number of large media-like recordings (0 = derive from TotalBytes, ~1 per 100 MiB, at least 2)
	SmallFiles int   // number of small case files (text/JSON, 200 B - 20 KiB each)
	Copies     int   // exact copies of media files filed into exhibit folders
}

// File is one entry Generate wrote. Besides regular files (kinds "media",
// "copy", "case", "growing" and "empty") the list holds one symlink (kind
// "symlink") and one empty directory (kind "dir"); check Mode.Type().
type File struct {
	Path    string      // relative to the tree root, slash-separated
	Size    int64       // content size; for the symlink, the length of Target
	Kind    string      // "media", "copy", "case", "growing", "empty", "symlink" or "dir"
	Mode    fs.FileMode // permission bits, plus the type bit for the symlink and the directory
	ModTime time.Time   // zero for the symlink, whose own mtime is left as created
	Seed    int64       // media seed: Append(path, n, Seed) continues the recording's stream
	Target  string      // symlink target, relative to the link's directory
}

// baseTime, after the last case date, is the mtime of the first entry (in
// path order); entry i gets baseTime + i minutes, so trees are reproducible.
var baseTime = time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)

const (
	court = "city-court"
	// minMedia keeps every recording larger than its container header.
	minMedia = 4 << 10
	// growingWeight sizes the live recording relative to a typical video.
	growingWeight = 0.5
)

// caseFileNames are filled in order: a case gets metadata.json before notes.
var caseFileNames = []string{"metadata.json", "notes.txt", "docket.txt"}

var caseFileTitles = map[string]string{"notes.txt": "Case notes", "docket.txt": "Docket sheet"}

type media struct {
	path   string
	seed   int64
	weight float64
	copies int
	size   int64
}

type tree struct {
	root  string
	files []File
	dirs  map[string]fs.FileMode
}

// Generate writes a tree under dir (creating it) and returns the list of
// files written (relative slash paths) with sizes, sorted by path.
func Generate(dir string, o Options) ([]File, error) {
	if o.TotalBytes < 0 || o.MediaFiles < 0 || o.SmallFiles < 0 || o.Copies < 0 {
		return nil, fmt.Errorf("generate: negative count in %+v", o)
	}
	plan := newRand(o.Seed, 10)
	words := newRand(o.Seed, 11)
	nMedia := o.MediaFiles
	if nMedia == 0 {
		nMedia = max(2, int(o.TotalBytes/(100<<20)))
	}

	// A hearing is an MP4 video plus its WAV audio; a case with recordings
	// has 1-3 hearings. Those cases are spread evenly over all cases, which
	// are opened month by month over two years.
	nHearings := (nMedia + 1) / 2
	var group []int // hearing → index among cases with recordings
	for g := 0; len(group) < nHearings; g++ {
		for range 1 + plan.IntN(3) {
			if len(group) < nHearings {
				group = append(group, g)
			}
		}
	}
	nGroups := group[len(group)-1] + 1
	nCases := max(nGroups, (o.SmallFiles+len(caseFileNames)-1)/len(caseFileNames))
	cases := make([]*courtCase, nCases)
	number := 10000 + plan.IntN(5000)
	for c := range cases {
		number += 1 + plan.IntN(3)
		opened := time.Date(2023, time.Month(1+c*24/nCases), 1+plan.IntN(28), 0, 0, 0, 0, time.UTC)
		// Every fourth case is sealed: its case files are private (0600).
		cases[c] = newCase(words, number, opened, c%4 == 0)
	}

	var recordings []*media
	for i := range nMedia {
		h := i / 2
		cs := cases[group[h]*nCases/nGroups]
		name := fmt.Sprintf("hearing-%d.mp4", h+1)
		weight := 0.5 + plan.Float64()
		if i%2 == 1 {
			name = fmt.Sprintf("hearing-%d.wav", h+1)
			weight = 0.05 + 0.15*plan.Float64() // audio is a fraction of video
		}
		cs.recordings = append(cs.recordings, name)
		recordings = append(recordings, &media{path: cs.dir() + "/" + name, seed: mediaSeed(o.Seed, i), weight: weight})
	}
	live := &media{path: cases[nCases-1].dir() + "/live-recording.mp4", seed: mediaSeed(o.Seed, nMedia), weight: growingWeight}
	copyOf := make([]int, o.Copies)
	for k := range copyOf {
		copyOf[k] = plan.IntN(nMedia)
		recordings[copyOf[k]].copies++
	}

	smallSizes := make([]int, o.SmallFiles)
	var smallBytes int64
	for k := range smallSizes {
		smallSizes[k] = caseSize(plan)
		smallBytes += int64(smallSizes[k])
	}
	// Share what the case files leave among media by weight, counting
	// each copy again, so the tree lands close to TotalBytes.
	denom := live.weight
	for _, m := range recordings {
		denom += m.weight * float64(1+m.copies)
	}
	unit := float64(max(0, o.TotalBytes-smallBytes)) / denom
	for _, m := range append(recordings, live) {
		m.size = max(minMedia, int64(m.weight*unit))
	}

	t := &tree{root: dir, dirs: map[string]fs.FileMode{}}
	if err := t.mkdir("."); err != nil {
		return nil, err
	}
	for k, size := range smallSizes {
		cs := cases[k%nCases]
		name := caseFileNames[k/nCases]
		var data []byte
		if name == "metadata.json" {
			data = cs.metadataJSON(words, size)
		} else {
			data = cs.text(words, caseFileTitles[name], size)
		}
		mode := fs.FileMode(0o644)
		if cs.sealed {
			mode = 0o600
		}
		if err := t.writeFile(cs.dir()+"/"+name, "case", mode, data); err != nil {
			return nil, err
		}
	}
	for _, m := range recordings {
		if err := t.writeMedia(m.path, "media", m); err != nil {
			return nil, err
		}
	}
	if err := t.writeMedia(live.path, "growing", live); err != nil {
		return nil, err
	}
	exhibits := map[string]int{}
	for _, i := range copyOf {
		m := recordings[i]
		caseDir := path.Base(path.Dir(m.path))
		exhibits[caseDir]++
		p := fmt.Sprintf("%s/exhibits/%s/exhibit-%d-%s", court, caseDir, exhibits[caseDir], path.Base(m.path))
		if err := t.writeMedia(p, "copy", m); err != nil {
			return nil, err
		}
	}
	if err := t.writeExtras(cases[:min(nCases, o.SmallFiles)]); err != nil {
		return nil, err
	}
	return t.files, t.setTimes()
}

// writeExtras writes the entries every tree has once: a script, an empty
// file, an empty directory and a symlink to the newest metadata.json (to the
// script when there are no case files).
func (t *tree) writeExtras(withMetadata []*courtCase) error {
	script := "#!/bin/sh\n# " + Marker + "\n" +
		"# Packs one case folder for the appeals court.\n" +
		"set -eu\n" +
		"dir=${1:?usage: export-case.sh CASE_DIR}\n" +
		"tar -C \"$(dirname \"$dir\")\" -czf \"$(basename \"$dir\").tar.gz\" \"$(basename \"$dir\")\"\n"
	if err := t.writeFile(court+"/tools/export-case.sh", "case", 0o755, []byte(script)); err != nil {
		return err
	}
	if err := t.writeFile(court+"/exhibits/.lock", "empty", 0o600, nil); err != nil {
		return err
	}
	empty := court + "/incoming"
	if err := t.mkdir(empty); err != nil {
		return err
	}
	t.dirs[empty] = 0o750
	t.files = append(t.files, File{Path: empty, Kind: "dir", Mode: fs.ModeDir | 0o750})

	target := "tools/export-case.sh"
	if n := len(withMetadata); n > 0 {
		target = strings.TrimPrefix(withMetadata[n-1].dir(), court+"/") + "/metadata.json"
	}
	link := court + "/current-case-metadata.json"
	full := filepath.Join(t.root, filepath.FromSlash(link))
	if err := os.Remove(full); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.Symlink(target, full); err != nil {
		return err
	}
	t.files = append(t.files, File{Path: link, Size: int64(len(target)), Kind: "symlink", Mode: fs.ModeSymlink | 0o777, Target: target})
	return nil
}

// setTimes sorts the entries by path, gives entry i, then each further
// directory, mtime baseTime + i minutes, and sets directory modes. It runs
// last because creating an entry changes its directory's mtime.
func (t *tree) setTimes() error {
	slices.SortFunc(t.files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	n := 0
	touch := func(rel string) (time.Time, error) {
		stamp := baseTime.Add(time.Duration(n) * time.Minute)
		n++
		return stamp, os.Chtimes(filepath.Join(t.root, filepath.FromSlash(rel)), stamp, stamp)
	}
	listed := map[string]bool{}
	for i := range t.files {
		f := &t.files[i]
		listed[f.Path] = true
		if f.Kind == "symlink" {
			continue // Chtimes would follow the link and touch its target
		}
		var err error
		if f.ModTime, err = touch(f.Path); err != nil {
			return err
		}
	}
	dirs := slices.Sorted(maps.Keys(t.dirs))
	for _, d := range dirs {
		if err := os.Chmod(filepath.Join(t.root, filepath.FromSlash(d)), t.dirs[d]); err != nil {
			return err
		}
		if listed[d] {
			continue
		}
		if _, err := touch(d); err != nil {
			return err
		}
	}
	return nil
}

func (t *tree) mkdir(rel string) error {
	if err := os.MkdirAll(filepath.Join(t.root, filepath.FromSlash(rel)), 0o755); err != nil {
		return err
	}
	for d := rel; d != "." && t.dirs[d] == 0; d = path.Dir(d) {
		t.dirs[d] = 0o755
	}
	return nil
}

func (t *tree) writeFile(rel, kind string, mode fs.FileMode, data []byte) error {
	full, err := t.create(rel)
	if err != nil {
		return err
	}
	if err := os.WriteFile(full, data, mode); err != nil {
		return err
	}
	return t.added(File{Path: rel, Size: int64(len(data)), Kind: kind, Mode: mode})
}

func (t *tree) writeMedia(rel, kind string, m *media) error {
	full, err := t.create(rel)
	if err != nil {
		return err
	}
	if err := WriteMedia(full, m.size, m.seed); err != nil {
		return err
	}
	return t.added(File{Path: rel, Size: m.size, Kind: kind, Mode: 0o644, Seed: m.seed})
}

// create makes rel's directory and returns rel's OS path.
func (t *tree) create(rel string) (string, error) {
	return filepath.Join(t.root, filepath.FromSlash(rel)), t.mkdir(path.Dir(rel))
}

// added records f after setting its exact mode, which the umask may have
// narrowed and which an existing file keeps.
func (t *tree) added(f File) error {
	t.files = append(t.files, f)
	return os.Chmod(filepath.Join(t.root, filepath.FromSlash(f.Path)), f.Mode)
}

func mediaSeed(seed int64, i int) int64 { return int64(mix(uint64(seed) ^ mix(uint64(i)+100))) }

func (c *courtCase) dir() string {
	return fmt.Sprintf("%s/hearings/%04d/%02d/case-%05d", court, c.opened.Year(), c.opened.Month(), c.number)
}
