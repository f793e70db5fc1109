package archiver_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// scanned returns the regular files Scan lists, relative to root.
func scanned(t *testing.T, root string, opts archiver.Options) []string {
	t.Helper()
	opts.Paths = []string{root}
	var out []string
	err := archiver.Scan(context.Background(), opts, func(p string, fi fs.FileInfo) error {
		if fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

const tag = "Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n"

var selectionTree = map[string]string{
	"keep/notes.txt":             "n",
	"keep/scratch.tmp":           "t",
	"keep/deep/a/b/frame.bin":    "f",
	"keep/deep/a/b/OTHER.TMP":    "T",
	"cache/CACHEDIR.TAG":         tag,
	"cache/blob":                 "c",
	"faketag/CACHEDIR.TAG":       "not the signature",
	"faketag/kept":               "k",
	"marked/.nobackup":           "",
	"marked/secret.mp4":          "s",
	"headered/.courtbak-skip":    "SKIP this directory",
	"headered/x":                 "x",
	"wrongheader/.courtbak-skip": "keep me",
	"wrongheader/y":              "y",
}

func TestSelection(t *testing.T) {
	root := repotest.WriteTree(t, selectionTree)
	all := scanned(t, root, archiver.Options{})
	if len(all) != len(selectionTree) {
		t.Fatalf("without options Scan lists %d files, want %d: %v", len(all), len(selectionTree), all)
	}
	for _, c := range []struct {
		name string
		opts archiver.Options
		gone []string
	}{
		{"base name glob", archiver.Options{Excludes: []string{"*.tmp"}}, []string{"keep/scratch.tmp"}},
		{"iexclude ignores case", archiver.Options{IExcludes: []string{"*.TMP"}}, []string{"keep/scratch.tmp", "keep/deep/a/b/OTHER.TMP"}},
		{"** spans directories", archiver.Options{Excludes: []string{root + "/keep/**/*.bin"}}, []string{"keep/deep/a/b/frame.bin"}},
		{"relative path pattern", archiver.Options{Excludes: []string{"a/b"}}, []string{"keep/deep/a/b/frame.bin", "keep/deep/a/b/OTHER.TMP"}},
		{"absolute directory", archiver.Options{Excludes: []string{root + "/keep/deep"}}, []string{"keep/deep/a/b/frame.bin", "keep/deep/a/b/OTHER.TMP"}},
		{"* stays in one component", archiver.Options{Excludes: []string{root + "/*/frame.bin"}}, nil},
		{"exclude-caches keeps the tag", archiver.Options{ExcludeCaches: true}, []string{"cache/blob"}},
		{"exclude-if-present", archiver.Options{ExcludeIfPresent: []string{".nobackup"}}, []string{"marked/secret.mp4"}},
		{"exclude-if-present with header", archiver.Options{ExcludeIfPresent: []string{".courtbak-skip:SKIP"}}, []string{"headered/x"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := scanned(t, root, c.opts)
			var want []string
			for _, f := range all {
				if !slices.Contains(c.gone, f) {
					want = append(want, f)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %v\nwant %v", got, want)
			}
		})
	}
	if err := archiver.Scan(context.Background(), archiver.Options{Paths: []string{root}, Excludes: []string{"[a"}}, func(string, fs.FileInfo) error { return nil }); err == nil || !strings.Contains(err.Error(), "invalid exclude pattern") {
		t.Errorf("invalid pattern: %v", err)
	}
}

// A backup stores exactly what Scan lists, so --dry-run and the progress
// totals tell the truth.
func TestBackupStoresWhatScanLists(t *testing.T) {
	ctx := context.Background()
	root := repotest.WriteTree(t, selectionTree)
	opts := archiver.Options{Paths: []string{root}, Host: "h", Excludes: []string{"**/deep/**/*.bin"}, IExcludes: []string{"NOTES.*"}, ExcludeCaches: true, ExcludeIfPresent: []string{".nobackup"}}
	want := scanned(t, root, opts)
	r := newRepo(t)
	res, err := archiver.Run(ctx, ctx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	prefix := filepath.ToSlash(root) + "/"
	err = snapshot.Walk(ctx, r, res.Snapshot.Tree, func(p string, n *snapshot.Node) error {
		if n.Type == snapshot.NodeFile && strings.HasPrefix(p, prefix) {
			got = append(got, strings.TrimPrefix(p, prefix))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) || slices.Contains(got, "keep/notes.txt") || slices.Contains(got, "cache/blob") {
		t.Errorf("snapshot holds %v\nScan listed %v", got, want)
	}
}

func TestFilesFromAndExcludeFile(t *testing.T) {
	root := repotest.WriteTree(t, map[string]string{"a/1.mp4": "1", "a/2.mp4": "2", "b/3.txt": "3"})
	list := filepath.Join(t.TempDir(), "list")
	content := "# recordings of courtroom 3\n\n" + root + "/a/*.mp4\n  " + root + "/b/3.txt  \n"
	if err := os.WriteFile(list, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := archiver.ReadFilesFrom(list)
	want := []string{root + "/a/1.mp4", root + "/a/2.mp4", root + "/b/3.txt"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ReadFilesFrom = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{root + "/missing.mp4\n", root + "/a/*.wav\n", "# only a comment\n"} {
		if err := os.WriteFile(list, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := archiver.ReadFilesFrom(list); err == nil {
			t.Errorf("ReadFilesFrom accepted %q", bad)
		}
	}
	t.Setenv("COURT", "city-a")
	if err := os.WriteFile(list, []byte("# comment\n*.tmp\n\n  /srv/$COURT/cache  \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pats, err := archiver.ReadPatternFile(list)
	if err != nil || !slices.Equal(pats, []string{"*.tmp", "/srv/city-a/cache"}) {
		t.Errorf("ReadPatternFile = %v, %v", pats, err)
	}
}
