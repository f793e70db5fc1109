package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "100K": 100 << 10, "64m": 64 << 20, "3G": 3 << 30, "2T": 2 << 40} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1", "3Q", "1.5G", "3GB", "9999999999T"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "tree")
	if err := run([]string{"-out", out, "-size", "2M", "-small", "5", "-copies", "1"}); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "h.wav")
	if err := os.WriteFile(src, []byte("RIFF\xff\xff\xff\xffWAVEdata\xff\xff\xff\xffpcm"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-append", src, "-bytes", "1K"}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(src); err != nil || st.Size() != 23+1024 {
		t.Fatalf("after -append: %v, %v", st, err)
	}
	if err := run([]string{"-remux", src, "-to", filepath.Join(dir, "r.wav")}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{}, {"-remux", src}, {"-out", out, "-size", "x"}, {"-out", out, "extra"}} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
