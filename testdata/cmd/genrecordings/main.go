// Command genrecordings writes a deterministic tree of test court recordings,
// grows a recording, or remuxes one.
//
//	genrecordings -out DIR [-size 3G] [-seed N] [-media N] [-small N] [-copies N]
//	genrecordings -append FILE -bytes 64M [-seed N]
//	genrecordings -remux SRC -to DST [-seed N]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/courtbak/courtbak/testdata/gen"
)

func main() {
	err := run(os.Args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "genrecordings:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("genrecordings", flag.ContinueOnError)
	out := fl.String("out", "", "write a tree of recordings under `DIR`")
	size := fl.String("size", "3G", "approximate total tree size (K, M, G, T suffixes are binary)")
	seed := fl.Int64("seed", 1, "seed; the same seed gives byte-identical output")
	mediaFiles := fl.Int("media", 0, "media recordings (0 = about one per 100 MiB)")
	small := fl.Int("small", 1000, "small case files (text/JSON)")
	copies := fl.Int("copies", 4, "exact copies of recordings filed as exhibits")
	appendTo := fl.String("append", "", "grow the recording `FILE` by -bytes (use its generation seed to continue its stream)")
	grow := fl.String("bytes", "64M", "bytes to append with -append")
	remuxSrc := fl.String("remux", "", "write a remuxed variant of recording `SRC` to -to")
	remuxDst := fl.String("to", "", "output `FILE` for -remux")
	fl.Usage = func() {
		fmt.Fprint(fl.Output(), "usage:\n"+
			"  genrecordings -out DIR [-size 3G] [-seed N] [-media N] [-small N] [-copies N]\n"+
			"  genrecordings -append FILE -bytes 64M [-seed N]\n"+
			"  genrecordings -remux SRC -to DST [-seed N]\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fl.Arg(0))
	}
	start := time.Now()
	switch {
	case *appendTo != "":
		n, err := parseSize(*grow)
		if err != nil {
			return fmt.Errorf("-bytes: %w", err)
		}
		if err := gen.Append(*appendTo, n, *seed); err != nil {
			return err
		}
		st, err := os.Stat(*appendTo)
		if err != nil {
			return err
		}
		fmt.Printf("appended %d bytes to %s (now %d bytes)\n", n, *appendTo, st.Size())
	case *remuxSrc != "":
		if *remuxDst == "" {
			return errors.New("-remux needs -to DST")
		}
		if err := gen.Remux(*remuxSrc, *remuxDst, *seed); err != nil {
			return err
		}
		st, err := os.Stat(*remuxDst)
		if err != nil {
			return err
		}
		fmt.Printf("remuxed %s to %s (%d bytes)\n", *remuxSrc, *remuxDst, st.Size())
	case *out != "":
		total, err := parseSize(*size)
		if err != nil {
			return fmt.Errorf("-size: %w", err)
		}
		files, err := gen.Generate(*out, gen.Options{Seed: *seed, TotalBytes: total, MediaFiles: *mediaFiles, SmallFiles: *small, Copies: *copies})
		if err != nil {
			return err
		}
		var bytes int64
		for _, f := range files {
			bytes += f.Size
		}
		fmt.Printf("wrote %d files, %d bytes (%.2f GiB) to %s in %s\n",
			len(files), bytes, float64(bytes)/(1<<30), *out, time.Since(start).Round(time.Millisecond))
	default:
		return errors.New("need -out DIR, -append FILE or -remux SRC -to DST (see -h)")
	}
	return nil
}

// parseSize reads a byte count such as 512, 100K, 64M or 3G (binary units).
func parseSize(s string) (int64, error) {
	digits, mult := s, int64(1)
	if i := strings.IndexAny(s, "kKmMgGtT"); i >= 0 && i == len(s)-1 {
		mult = 1 << (10 * (1 + strings.IndexByte("kmgt", byte(strings.ToLower(s[i:])[0]))))
		digits = s[:i]
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q: want a number with an optional K, M, G or T suffix", s)
	}
	return n * mult, nil
}
