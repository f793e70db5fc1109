package archiver

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	pathpkg "path"
	"path/filepath"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// cacheDirTag is the file that marks a cache directory, and the signature
// its contents must begin with (https://bford.info/cachedir/).
const (
	cacheDirTag       = "CACHEDIR.TAG"
	cacheDirSignature = "Signature: 8a477f597d28d172789f06886806bc55"
)

// pattern is one exclude pattern: doublestar syntax (`*`, `?`, `[...]`,
// and `**` for any number of path components), matched against the
// entry's absolute path when it begins with "/", and otherwise against its
// base name or any trailing part of its path ("*.tmp", "cache/**").
type pattern struct {
	glob string
	fold bool // --iexclude: the glob and the path are compared lowercased
}

// marker is an --exclude-if-present NAME[:HEADER] or the cache tag: a
// directory holding it keeps only the marker itself.
type marker struct {
	name   string
	header string // the file must begin with it; "" for any contents
}

// selector decides which entries a backup stores.
type selector struct {
	patterns []pattern
	markers  []marker
	// devices holds the file systems of the source paths when the backup
	// stays on them (--one-file-system); nil otherwise.
	devices map[uint64]bool
}

func newSelector(opts Options) (*selector, error) {
	s := &selector{}
	for _, p := range opts.Excludes {
		s.patterns = append(s.patterns, pattern{glob: filepath.ToSlash(p)})
	}
	for _, p := range opts.IExcludes {
		s.patterns = append(s.patterns, pattern{glob: strings.ToLower(filepath.ToSlash(p)), fold: true})
	}
	for _, p := range s.patterns {
		if !doublestar.ValidatePattern(p.glob) {
			return nil, fmt.Errorf("invalid exclude pattern %q: unbalanced '[' or '{', or a trailing '\\'", p.glob)
		}
	}
	for _, spec := range opts.ExcludeIfPresent {
		name, header, _ := strings.Cut(spec, ":")
		if name == "" || strings.ContainsRune(name, '/') {
			return nil, fmt.Errorf("--exclude-if-present %q: give a file name (NAME or NAME:HEADER)", spec)
		}
		s.markers = append(s.markers, marker{name: name, header: header})
	}
	if opts.ExcludeCaches {
		s.markers = append(s.markers, marker{name: cacheDirTag, header: cacheDirSignature})
	}
	if opts.OneFileSystem {
		s.devices = map[uint64]bool{}
		for _, p := range AbsPaths(opts.Paths) {
			fi, err := os.Lstat(p)
			if err != nil {
				return nil, fmt.Errorf("source path %s: %w", p, err)
			}
			s.devices[identity(fi).device] = true
		}
	}
	return s, nil
}

// excluded reports whether an exclude pattern matches path (absolute).
func (s *selector) excluded(path string) bool {
	path = filepath.ToSlash(path)
	for _, p := range s.patterns {
		name := path
		if p.fold {
			name = strings.ToLower(name)
		}
		if matchPattern(p.glob, name) {
			return true
		}
	}
	return false
}

func matchPattern(glob, path string) bool {
	if strings.HasPrefix(glob, "/") {
		ok, _ := doublestar.Match(glob, path)
		return ok
	}
	if ok, _ := doublestar.Match(glob, pathpkg.Base(path)); ok {
		return true
	}
	ok, _ := doublestar.Match("**/"+glob, strings.TrimPrefix(path, "/"))
	return ok
}

// entries returns the entries of directory dir that a backup stores: a
// directory holding a marker keeps only its markers, and entries an
// exclude pattern matches are left out.
func (s *selector) entries(dir string, entries []fs.DirEntry) []fs.DirEntry {
	if m := s.markerIn(dir, entries); m != "" {
		var keep []fs.DirEntry
		for _, de := range entries {
			if de.Name() == m {
				keep = append(keep, de)
			}
		}
		return keep
	}
	if len(s.patterns) == 0 {
		return entries
	}
	keep := entries[:0:0]
	for _, de := range entries {
		if !s.excluded(filepath.Join(dir, de.Name())) {
			keep = append(keep, de)
		}
	}
	return keep
}

// markerIn returns the name of a marker among entries whose contents
// qualify, or "".
func (s *selector) markerIn(dir string, entries []fs.DirEntry) string {
	for _, m := range s.markers {
		for _, de := range entries {
			if de.Name() == m.name && de.Type().IsRegular() && hasHeader(filepath.Join(dir, m.name), m.header) {
				return m.name
			}
		}
	}
	return ""
}

func hasHeader(path, header string) bool {
	if header == "" {
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, len(header))
	if _, err := io.ReadFull(f, buf); err != nil {
		return false
	}
	return string(buf) == header
}

// otherDevice reports whether fi lies on a file system the backup does not
// enter (--one-file-system): such a directory is stored empty, as the
// mount point it is.
func (s *selector) otherDevice(fi fs.FileInfo) bool {
	return s.devices != nil && !s.devices[identity(fi).device]
}

// ReadPatternFile reads an --exclude-file: one pattern per line; blank
// lines and lines starting with '#' are skipped, surrounding spaces
// trimmed, and $VAR / ${VAR} expanded from the environment.
func ReadPatternFile(path string) ([]string, error) {
	return readLines(path, true)
}

// ReadFilesFrom reads a --files-from list: one path per line, blank lines
// and lines starting with '#' skipped. A line with glob characters is
// expanded (`**` included); one that matches nothing is an error, as is
// any path that does not exist, so a mistyped list never backs up less
// than it names.
func ReadFilesFrom(path string) ([]string, error) {
	lines, err := readLines(path, false)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range lines {
		if !strings.ContainsAny(l, "*?[{") {
			if _, err := os.Lstat(l); err != nil {
				return nil, fmt.Errorf("--files-from %s: %w", path, err)
			}
			out = append(out, l)
			continue
		}
		matches, err := doublestar.FilepathGlob(l, doublestar.WithNoFollow())
		if err != nil {
			return nil, fmt.Errorf("--files-from %s: pattern %q: %w", path, l, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("--files-from %s: pattern %q matches no file", path, l)
		}
		out = append(out, matches...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--files-from %s: the list names no path", path)
	}
	return out, nil
}

func readLines(path string, expand bool) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if expand {
			l = os.ExpandEnv(l)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
