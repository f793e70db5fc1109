package gen

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

func generate(t *testing.T, o Options) (string, []File) {
	t.Helper()
	dir := t.TempDir()
	files, err := Generate(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return dir, files
}

// digest describes an entry by everything a restore must reproduce.
func digest(t *testing.T, dir string, f File) [32]byte {
	t.Helper()
	full := filepath.Join(dir, filepath.FromSlash(f.Path))
	st, err := os.Lstat(full)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != f.Mode || st.Size() != f.Size && f.Kind != "dir" {
		t.Fatalf("%s: on disk mode %v size %d, listed %v %d", f.Path, st.Mode(), st.Size(), f.Mode, f.Size)
	}
	if f.Kind != "symlink" && !st.ModTime().Equal(f.ModTime) {
		t.Fatalf("%s: mtime %v, listed %v", f.Path, st.ModTime(), f.ModTime)
	}
	var content []byte
	switch f.Kind {
	case "symlink":
		target, err := os.Readlink(full)
		if err != nil {
			t.Fatal(err)
		}
		content = []byte(target)
	case "dir":
	default:
		if content, err = os.ReadFile(full); err != nil {
			t.Fatal(err)
		}
	}
	return sha256.Sum256(content)
}

func treeDigests(t *testing.T, dir string, files []File) map[string][32]byte {
	m := map[string][32]byte{}
	for _, f := range files {
		m[f.Path] = digest(t, dir, f)
	}
	return m
}

func TestDeterministic(t *testing.T) {
	o := Options{Seed: 42, TotalBytes: 6 << 20, SmallFiles: 40, Copies: 2}
	dirA, a := generate(t, o)
	dirB, b := generate(t, o)
	da, db := treeDigests(t, dirA, a), treeDigests(t, dirB, b)
	if len(a) != len(b) {
		t.Fatalf("%d vs %d files", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] || da[a[i].Path] != db[a[i].Path] {
			t.Fatalf("entry %d differs: %+v vs %+v", i, a[i], b[i])
		}
	}

	o.Seed++
	dirC, c := generate(t, o)
	dc := treeDigests(t, dirC, c)
	for p, h := range da {
		if dc[p] == h && strings.HasSuffix(p, ".mp4") {
			t.Errorf("seed %d and %d both wrote %s identically", o.Seed-1, o.Seed, p)
		}
	}
}

func TestTreeShape(t *testing.T) {
	o := Options{Seed: 7, TotalBytes: 40 << 20, MediaFiles: 5, SmallFiles: 60, Copies: 3}
	dir, files := generate(t, o)
	var total int64
	kinds := map[string]int{}
	modes := map[fs.FileMode]bool{}
	byPath := map[string]File{}
	for _, f := range files {
		total += f.Size
		kinds[f.Kind]++
		modes[f.Mode] = true
		byPath[f.Path] = f
		if f.Kind == "case" {
			if f.Size < minCase || f.Size > maxCase {
				t.Errorf("%s: case file of %d bytes", f.Path, f.Size)
			}
		}
	}
	if total < o.TotalBytes*9/10 || total > o.TotalBytes*11/10 {
		t.Errorf("tree holds %d bytes, asked for %d", total, o.TotalBytes)
	}
	want := map[string]int{"media": 5, "copy": 3, "case": 61, "growing": 1, "empty": 1, "symlink": 1, "dir": 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d entries of kind %s, want %d (all: %v)", kinds[k], k, n, kinds)
		}
	}
	for _, m := range []fs.FileMode{0o644, 0o600, 0o755} {
		if !modes[m] {
			t.Errorf("no file with mode %v", m)
		}
	}

	digests := treeDigests(t, dir, files)
	for _, f := range files {
		switch f.Kind {
		case "copy":
			var found bool
			for p, g := range byPath {
				found = found || g.Kind == "media" && g.Seed == f.Seed && digests[p] == digests[f.Path]
			}
			if !found {
				t.Errorf("%s is not a copy of a media file", f.Path)
			}
		case "symlink":
			target := byPath[path.Join(path.Dir(f.Path), f.Target)]
			if path.IsAbs(f.Target) || target.Kind != "case" {
				t.Errorf("symlink %s -> %s does not point to a case file", f.Path, f.Target)
			}
		}
	}

	if _, err := Generate(t.TempDir(), Options{Copies: -1}); err == nil {
		t.Error("Generate accepted a negative count")
	}

	// Without MediaFiles the count follows TotalBytes, at least 2.
	_, files = generate(t, Options{Seed: 1, TotalBytes: 1 << 20})
	kinds = map[string]int{}
	for _, f := range files {
		kinds[f.Kind]++
	}
	if kinds["media"] != 2 || kinds["case"] != 1 {
		t.Errorf("derived tree has kinds %v, want 2 media and only the script as case file", kinds)
	}
}

func TestCaseFiles(t *testing.T) {
	dir, files := generate(t, Options{Seed: 3, TotalBytes: 1 << 20, SmallFiles: 30})
	var all []byte
	for _, f := range files {
		if f.Kind != "case" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(Marker)) {
			t.Errorf("%s lacks the marker", f.Path)
		}
		all = append(all, data...)
	}
	if r := ratio(t, all); r > 0.5 {
		t.Errorf("case files compress to %.2f of their size, want < 0.5", r)
	}
}

func TestMediaIncompressible(t *testing.T) {
	for _, name := range []string{"a.mp4", "a.wav"} {
		p := filepath.Join(t.TempDir(), name)
		if err := WriteMedia(p, 3<<20+5, 9); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) != 3<<20+5 {
			t.Fatalf("%s has %d bytes", name, len(data))
		}
		if r := ratio(t, data); r < 0.95 {
			t.Errorf("%s compresses to %.3f of its size", name, r)
		}
	}
}

func TestAppend(t *testing.T) {
	dir := t.TempDir()
	// Start inside the header, mid-block and on a block boundary.
	for _, start := range []int64{100, 1<<20 + 333, 2 << 20} {
		const n = 1<<20 + 77
		p, whole := filepath.Join(dir, "live.mp4"), filepath.Join(dir, "whole.mp4")
		if err := WriteMedia(p, start, 5); err != nil {
			t.Fatal(err)
		}
		before := read(t, p)
		if err := Append(p, n, 5); err != nil {
			t.Fatal(err)
		}
		after := read(t, p)
		if int64(len(after)) != start+n || !bytes.Equal(after[:start], before) {
			t.Fatalf("start %d: grew to %d bytes or changed the prefix", start, len(after))
		}
		if err := WriteMedia(whole, start+n, 5); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(after, read(t, whole)) {
			t.Errorf("start %d: appended recording differs from one written whole", start)
		}
	}
}

func TestRemux(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"h.mp4", "h.wav"} {
		src, dst, again := filepath.Join(dir, name), filepath.Join(dir, "r-"+name), filepath.Join(dir, "r2-"+name)
		if err := WriteMedia(src, 12<<20, 11); err != nil {
			t.Fatal(err)
		}
		if err := Remux(src, dst, 11); err != nil {
			t.Fatal(err)
		}
		if err := Remux(src, again, 11); err != nil {
			t.Fatal(err)
		}
		if err := Remux(src, src, 11); err == nil {
			t.Error("remux onto its own source succeeded")
		}
		a, b := read(t, src), read(t, dst)
		if bytes.Equal(a, b) {
			t.Fatalf("%s: remux is identical to its source", name)
		}
		if !bytes.Equal(b, read(t, again)) {
			t.Errorf("%s: remux is not deterministic", name)
		}
		if _, off := payloadOffset(dst, b); off == 0 || string(b[:4]) != string(a[:4]) {
			t.Errorf("%s: remux lost the container header", name)
		}
		s := shared(a, b)
		t.Logf("%s: remux shares %.4f of the source", name, s)
		if s < 0.9 || s > 0.999 {
			t.Errorf("%s: remux shares %.3f of the source's chunks, want most but not all", name, s)
		}
	}
}

// shared returns the fraction of a's bytes in content-defined chunks that
// also occur in b, with a gear-hash chunker of 16 KiB average.
func shared(a, b []byte) float64 {
	seen := map[[32]byte]bool{}
	for _, c := range chunks(b) {
		seen[sha256.Sum256(c)] = true
	}
	var n int
	for _, c := range chunks(a) {
		if seen[sha256.Sum256(c)] {
			n += len(c)
		}
	}
	return float64(n) / float64(len(a))
}

func chunks(data []byte) [][]byte {
	var gear [256]uint64
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range gear {
		gear[i] = rng.Uint64()
	}
	var out [][]byte
	var h uint64
	start := 0
	for i, c := range data {
		h = h<<1 + gear[c]
		if i-start >= 2<<10 && h>>50 == 0 || i == len(data)-1 {
			out = append(out, data[start:i+1])
			start, h = i+1, 0
		}
	}
	return out
}

func ratio(t *testing.T, data []byte) float64 {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return float64(buf.Len()) / float64(len(data))
}

func read(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// BenchmarkMedia measures generation alone, without the file system.
func BenchmarkMedia(b *testing.B) {
	const n = 64 << 20
	b.SetBytes(n)
	for b.Loop() {
		if err := writeMedia(io.Discard, "x.mp4", 1, 0, n); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGolden pins the generated bytes, so data sets stay identical across
// Go releases and architectures (s390x is big-endian); change the hashes
// only when changing the generator on purpose.
func TestGolden(t *testing.T) {
	dir, files := generate(t, Options{Seed: 2024, TotalBytes: 3 << 20, SmallFiles: 12, Copies: 1})
	h := sha256.New()
	digests := treeDigests(t, dir, files)
	for _, f := range files {
		d := digests[f.Path]
		fmt.Fprintf(h, "%s %d %s %v %d %s %x\n", f.Path, f.Size, f.Kind, f.Mode, f.ModTime.Unix(), f.Target, d)
	}
	if got, want := fmt.Sprintf("%x", h.Sum(nil)), "c9249a45d2aa285ed5f1bb544275e1e11e0464cf6b820c9295a18c8c1a11cb1a"; got != want {
		t.Errorf("tree hash %s, want %s", got, want)
	}
}
