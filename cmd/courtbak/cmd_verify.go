package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/checker"
	"github.com/courtbak/courtbak/repo/report"
	"github.com/courtbak/courtbak/repo/status"
)

// maxProblemLines bounds the problems printed on stderr; report files
// hold them all.
const maxProblemLines = 50

type verifyFlags struct {
	readData bool
	subset   string
	keyless  bool
	repair   bool
	reports  []string
	signKey  string
	manifest []string
	labels   labelFlags
}

func newVerifyCommand(g *globals) *cobra.Command {
	var f verifyFlags
	c := &cobra.Command{
		Use:   "verify",
		Short: "Check the repository and its replicas, repair from replicas, write audit reports",
		Long: `Check the repository: its structure always (every snapshot's trees and blobs
indexed, every indexed pack present with its size, keys and index readable);
with --read-data every blob is also read, decrypted, authenticated and hashed;
--read-data-subset N% reads a rotating subset, so that ceil(100/N) daily runs
cover everything. --keyless needs no password: it checks every stored object
against its name. Each --replica is compared with the primary object by object.

--repair replaces objects damaged or missing in the repository (--repo) with
intact copies from the replicas. --report FILE writes a report (.json, .html or
.md) with a hash of its content, signed with --sign-key KEY.pem. Reports carry
the file list (evidence manifest) of the newest snapshot of each host and set
of paths; --manifest all or --manifest SNAPSHOT chooses others. --court,
--title, --label and --replica-label name the court, the report and the copies.

Each run records its result in the checked repository (state/verify.json,
readable without the password) for 'courtbak status'.

Exit status: 0 when every copy is intact, 1 when a problem was found.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runVerify(c.Context(), g, &f) },
	}
	fl := c.Flags()
	fl.BoolVar(&f.readData, "read-data", false, "read, decrypt, authenticate and hash all data")
	fl.StringVar(&f.subset, "read-data-subset", "", "read a rotating `N%` of the data packs each day")
	fl.BoolVar(&f.keyless, "keyless", false, "check stored objects against their names, without a password")
	fl.BoolVar(&f.repair, "repair", false, "replace damaged or missing objects with intact copies from the --replica repositories")
	fl.StringArrayVar(&f.reports, "report", nil, "write a report to `FILE` (.json, .html or .md; repeatable; {date} and {time} in FILE become the local date and time)")
	fl.StringVar(&f.signKey, "sign-key", "", "sign reports with the Ed25519 private key in `KEY.pem` (PEM PKCS#8, as openssl genpkey writes)")
	fl.StringArrayVar(&f.manifest, "manifest", nil, "snapshots whose file lists reports carry: `latest` (the newest per host and paths; default), all, or SNAPSHOT ids (repeatable)")
	f.labels.register(fl, true)
	return c
}

func runVerify(ctx context.Context, g *globals, f *verifyFlags) error {
	opts := checker.Options{ReadData: f.readData || f.keyless, Repair: f.repair}
	if f.subset != "" {
		if f.readData {
			return errors.New("give --read-data or --read-data-subset, not both")
		}
		pct, err := parseSubsetPercent(f.subset)
		if err != nil {
			return err
		}
		opts.ReadData, opts.SubsetPercent = true, pct
	}
	now := time.Now()
	for i, p := range f.reports {
		f.reports[i] = expandReportPath(p, now)
	}
	formats := make([]report.Format, len(f.reports))
	for i, p := range f.reports {
		var err error
		if formats[i], err = report.FormatOf(p); err != nil {
			return err
		}
	}
	var (
		key ed25519.PrivateKey
		err error
	)
	if f.signKey != "" {
		if len(f.reports) == 0 {
			return errors.New("--sign-key signs reports: give --report FILE too")
		}
		b, err := os.ReadFile(f.signKey)
		if err != nil {
			return fmt.Errorf("read signing key: %w", err)
		}
		if key, err = report.ParsePrivateKey(b); err != nil {
			return fmt.Errorf("signing key %s: %w", f.signKey, err)
		}
	}
	if f.repair && len(g.replicas) == 0 {
		return errors.New("--repair takes intact copies from replicas: give --replica URL")
	}
	if opts.Manifest, err = report.ParseManifestChoice(f.manifest); err != nil {
		return err
	}
	if f.keyless && len(f.manifest) > 0 {
		return errors.New("--manifest lists snapshots' files, which a --keyless check cannot read: drop --manifest or --keyless")
	}
	f.labels.fromProfile(g.profile, g.repoURL)
	replicaLabels, err := f.labels.replicaLabels(g.replicas, g.profile)
	if err != nil {
		return err
	}

	primary, r, err := openVerifyTarget(ctx, g, f.keyless)
	if err != nil {
		return err
	}
	defer primary.Backend.Close()
	if err := checkManifestIDs(ctx, primary.Backend, opts.Manifest); err != nil {
		return err
	}
	primary.Label = f.labels.primary
	var replicas []checker.Target
	for i, u := range g.replicas {
		t := checker.Target{Location: remote.Redact(u), Label: replicaLabels[i]}
		if t.Backend, t.OpenErr = g.openBackend(ctx, u); t.Backend != nil {
			t.Location = remote.Redact(t.Backend.Location())
			defer t.Backend.Close()
		}
		replicas = append(replicas, t)
	}
	var bar *progressbar.ProgressBar
	opts.OnPlan = func(total int64) {
		if bar != nil {
			_ = bar.Finish() // the previous round, before a repair
		}
		bar = g.bytesBar(total, "verify")
	}
	opts.OnRead = func(n int64) {
		if bar != nil {
			_ = bar.Add64(n)
		}
	}
	rep, err := checker.Check(ctx, primary, r, replicas, opts)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return err
	}
	rep.Courtbak = version
	rep.Host, _ = os.Hostname()
	rep.Title, rep.Court = f.labels.title, f.labels.court
	rep.SetLocation(time.Local)
	// The state the earlier runs left gives the rotating subset's coverage;
	// this run is added to it once the reports are written.
	state, stateErr := status.LoadState(ctx, primary.Backend)
	if stateErr == nil {
		state.Record(rep)
	}

	var written []string
	for i, p := range f.reports {
		data, err := report.Encode(formats[i], rep, key)
		if err != nil {
			return err
		}
		if err := writeReportAtomic(p, data); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		written = append(written, p)
	}
	if stateErr == nil {
		stateErr = status.SaveState(ctx, primary.Backend, state)
	}
	if stateErr != nil {
		g.warn(fmt.Sprintf("the result of this run is not recorded for 'courtbak status': %v", stateErr))
	}
	printProblems(g, rep)
	if g.json {
		if err := g.printJSON(withoutManifests(rep)); err != nil {
			return err
		}
	} else if !g.quiet {
		printVerifySummary(g, rep, written, key)
	}
	g.metrics.files, g.metrics.bytes, g.metrics.errors = count(rep.Checked.Files), count(rep.Checked.BytesRead), count(rep.Unresolved())
	if n := rep.Unresolved(); n > 0 {
		return &exitError{code: exitFatal, err: fmt.Errorf("verify found %d %s (listed above)", n, countNoun(n, "problem", "problems"))}
	}
	return nil
}

// openVerifyTarget opens the repository: with the password, or keyless
// (storage only).
func openVerifyTarget(ctx context.Context, g *globals, keyless bool) (checker.Target, *repo.Repository, error) {
	t := checker.Target{Location: remote.Redact(g.repoURL)}
	if !keyless {
		r, err := g.openRepoKeys(ctx, true)
		if err != nil {
			return t, nil, err
		}
		t.Backend = r.Backend()
		t.Location = remote.Redact(t.Backend.Location())
		return t, r, nil
	}
	be, err := g.openBackend(ctx, g.repoURL)
	if err != nil {
		return t, nil, err
	}
	if err := checkExists(ctx, be, false); err != nil {
		be.Close()
		return t, nil, err
	}
	t.Backend = be
	t.Location = remote.Redact(be.Location())
	return t, nil, nil
}

// checkManifestIDs fails at once when a --manifest id names no snapshot,
// or several, rather than after hours of checking: it matches the ids
// against the listing of snapshot objects (the checker checks again
// against the snapshots it could read).
func checkManifestIDs(ctx context.Context, be remote.Backend, c report.ManifestChoice) error {
	if len(c.IDs) == 0 {
		return nil
	}
	var snaps []report.Snapshot
	err := be.List(ctx, remote.Snapshot, func(fi remote.ObjectInfo) error {
		snaps = append(snaps, report.Snapshot{ID: fi.Name, Status: report.SnapshotUnreadable})
		return nil
	})
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	_, err = report.ManifestChoice{IDs: c.IDs}.Select(snaps)
	return err
}

// parseSubsetPercent reads "N%" or "N" with 0 < N <= 100.
func parseSubsetPercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v <= 0 || v > 100 {
		return 0, fmt.Errorf("--read-data-subset %q: want a percentage above 0 and at most 100, such as 10%%", s)
	}
	return v, nil
}

// printProblems lists unresolved problems on stderr, one line each, with
// what to do, and repaired ones on stdout.
func printProblems(g *globals, rep *report.Report) {
	shown := 0
	for _, p := range rep.Problems {
		if p.Repaired {
			continue
		}
		if shown++; shown > maxProblemLines {
			continue
		}
		var where []string
		if p.Object != "" {
			where = append(where, p.Object)
		}
		if p.Snapshot != "" {
			where = append(where, "snapshot "+p.Snapshot[:min(8, len(p.Snapshot))])
		}
		if p.Path != "" {
			where = append(where, p.Path)
		}
		line := fmt.Sprintf("courtbak: %s: %s: %s", p.Copy, strings.Join(where, " "), p.Message)
		if p.Action != "" {
			line += "; to fix: " + p.Action
		}
		fmt.Fprintln(g.stderr, oneLine(errors.New(line)))
	}
	if shown > maxProblemLines {
		fmt.Fprintf(g.stderr, "courtbak: ... and %d more problems (--report FILE lists them all)\n", shown-maxProblemLines)
	}
	for _, rp := range rep.Repairs {
		g.printf("repaired %s with the intact copy at %s\n", rp.Object, rp.From)
	}
}

func printVerifySummary(g *globals, rep *report.Report, written []string, key ed25519.PrivateKey) {
	if rep.Court != "" || rep.Title != "" {
		fmt.Fprintln(g.stdout, strings.TrimPrefix(rep.Court+": "+rep.Title, ": "))
	}
	fmt.Fprintf(g.stdout, "repository %s at %s\n", rep.Repository.ID, rep.Repository.Location)
	fmt.Fprintf(g.stdout, "checked: %s\n", rep.Scope.Description)
	ch := rep.Checked
	if rep.ManifestAvailable {
		fmt.Fprintf(g.stdout, "%d snapshots, %d files (%s), ", ch.Snapshots, ch.Files, formatBytes(ch.FileBytes))
	} else {
		fmt.Fprintf(g.stdout, "%d snapshots, ", ch.Snapshots)
	}
	fmt.Fprintf(g.stdout, "%d packs, packs read in full: %d of %d (%s of %s), %d objects hashed, %s read\n",
		ch.Packs, ch.PacksRead, ch.Packs, formatBytes(ch.PackBytesRead), formatBytes(ch.PackBytes), ch.ObjectsHashed, formatBytes(ch.BytesRead))
	if c := rep.CoverageSummary(); c != "" {
		fmt.Fprintln(g.stdout, c)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "copy\trole\tstatus\tobjects\tpacks read\tmissing\tdamaged\textra")
	for _, cp := range rep.Copies {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d of %d (%s)\t%d\t%d\t%d\n", cp.Name(), cp.Role, cp.Status, cp.Objects, cp.PacksRead, cp.Packs, formatBytes(cp.PackBytesRead), len(cp.Missing), len(cp.Damaged), len(cp.Extra))
	}
	_ = tw.Flush()
	for _, p := range written {
		if key != nil {
			fmt.Fprintf(g.stdout, "report written to %s, signed by key %s\n", p, report.Fingerprint(key.Public().(ed25519.PublicKey)))
		} else {
			fmt.Fprintf(g.stdout, "report written to %s (not signed)\n", p)
		}
	}
	fmt.Fprintln(g.stdout, rep.Headline())
}

// withoutManifests keeps --json output small: the per-file manifests go to
// --report files only.
func withoutManifests(rep *report.Report) *report.Report {
	c := *rep
	c.Snapshots = make([]report.Snapshot, len(rep.Snapshots))
	for i, s := range rep.Snapshots {
		s.Manifest, s.ManifestIncluded = nil, false
		c.Snapshots[i] = s
	}
	if c.ManifestAvailable {
		c.ManifestAvailable = false
		c.ManifestNote = "--json output leaves out the per-file manifests; write them with --report FILE.json"
	}
	return &c
}

func countNoun(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// expandReportPath replaces {date} in a report path with the local date
// (2026-12-07) and {time} with the local time (013000), so that a
// scheduled verify writes a new report each run.
func expandReportPath(path string, now time.Time) string {
	return strings.NewReplacer("{date}", now.Format("2006-01-02"), "{time}", now.Format("150405")).Replace(path)
}
