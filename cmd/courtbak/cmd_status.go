package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/courtbak/courtbak/cmd/courtbak/config"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/status"
)

type statusFlags struct {
	maxAge  time.Duration
	reports []string
	labels  labelFlags
}

func newStatusCommand(g *globals) *cobra.Command {
	var f statusFlags
	c := &cobra.Command{
		Use:   "status",
		Short: "Every court's protection at a glance: newest backup, replica lag, last verification",
		Long: `Show whether a court's backups are protected: when the newest snapshot was
stored and, with the password, the newest snapshot of each host and set of
paths and its age against --max-age; for each --replica the objects and bytes
it lacks (replication lag); the last verification recorded at each copy and
how much of the data it has covered; the repository's size and growth per day.

Without a password (no --password-file, --password-command or
COURTBAK_PASSWORD) everything comes from storage listings and the small state
that verify runs leave: the provincial center needs no password.

With neither --repo nor --profile, every profile of the configuration file
(--config FILE, COURTBAK_CONFIG, or the default paths) is one court: its label,
repository, replicas and labels, its [profile.NAME.status] max-age, and its
password source if it has one.

--report FILE writes the status as a self-contained HTML page (.html) or
JSON (.json). Exit status: 0 when every court is protected, 1 when any
breaches its threshold (a copy unreachable, a snapshot older than --max-age, a
replica lacking objects older than --max-age, a verification that found
problems).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runStatus(c, g, &f) },
	}
	fl := c.Flags()
	fl.DurationVar(&f.maxAge, "max-age", 0, "the newest snapshot must be younger than `DURATION` (e.g. 26h), and replicas must hold what the primary stored before that; 0 checks no age")
	fl.StringArrayVar(&f.reports, "report", nil, "write the status to `FILE` (.html or .json; repeatable)")
	f.labels.register(fl, false)
	return c
}

func runStatus(c *cobra.Command, g *globals, f *statusFlags) error {
	ctx := c.Context()
	if f.maxAge < 0 {
		return fmt.Errorf("--max-age %s: give a positive duration such as 26h, or 0", f.maxAge)
	}
	for _, p := range f.reports {
		if ext := strings.ToLower(filepath.Ext(p)); ext != ".html" && ext != ".htm" && ext != ".json" {
			return fmt.Errorf("status report %q: name it .html or .json to choose the format", p)
		}
	}
	courts, passwords, err := statusCourts(c, g, f)
	if err != nil {
		return err
	}
	opts := status.Options{Open: g.openBackend, Snapshots: g.statusSnapshots(passwords)}
	sum := status.Collect(ctx, courts, opts)
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, p := range f.reports {
		var data []byte
		if strings.HasSuffix(strings.ToLower(p), ".json") {
			data, err = sum.JSON()
		} else {
			data, err = sum.HTML(time.Local)
		}
		if err != nil {
			return err
		}
		if err := writeReportAtomic(p, data); err != nil {
			return fmt.Errorf("write status report: %w", err)
		}
	}
	g.metrics.errors = count(sum.Breached)
	if len(sum.Courts) == 1 {
		g.metrics.latestSnapshot = sum.Courts[0].NewestSnapshot()
	}
	if g.json {
		if err := g.printJSON(sum); err != nil {
			return err
		}
	} else if !g.quiet {
		printStatus(g, sum)
	}
	if !sum.OK {
		return &exitError{code: exitFatal, err: fmt.Errorf("%d of %d %s %s attention", sum.Breached, len(sum.Courts),
			countNoun(len(sum.Courts), "court", "courts"), countNoun(sum.Breached, "needs", "need"))}
	}
	return nil
}

// passwordSource is where a court's password comes from; the zero value
// means none (the court is looked at keyless).
type passwordSource struct{ file, command string }

// statusCourts returns the courts to look at: the one of --repo (or
// --profile) and its --replicas, else every profile of the configuration
// file; and each court's password source, by primary URL.
func statusCourts(c *cobra.Command, g *globals, f *statusFlags) ([]status.Court, map[string]passwordSource, error) {
	passwords := map[string]passwordSource{}
	if g.repoURL != "" || g.profileName != "" {
		if g.repoURL == "" {
			return nil, nil, fmt.Errorf("profile %s names no repository: set repo in it or give --repo URL", g.profileName)
		}
		f.labels.fromProfile(g.profile, g.repoURL)
		labels, err := f.labels.replicaLabels(g.replicas, g.profile)
		if err != nil {
			return nil, nil, err
		}
		court := status.Court{Label: f.labels.court, Primary: status.Site{Label: f.labels.primary, URL: g.repoURL}, MaxAge: f.maxAge}
		for i, u := range g.replicas {
			court.Replicas = append(court.Replicas, status.Site{Label: labels[i], URL: u})
		}
		if g.passwordFile != "" || g.passwordCommand != "" || os.Getenv("COURTBAK_PASSWORD") != "" {
			passwords[g.repoURL] = passwordSource{file: g.passwordFile, command: g.passwordCommand}
		}
		return []status.Court{court}, passwords, nil
	}
	if len(f.labels.replicas) > 0 || f.labels.primary != "" || f.labels.court != "" {
		return nil, nil, errors.New("--court, --label and --replica-label name the court of --repo; the configuration file names every court")
	}
	file, err := g.loadConfig(c.Root())
	if errors.Is(err, config.ErrNotFound) {
		return nil, nil, fmt.Errorf("no repository given: use --repo URL, --profile NAME, or a configuration file listing every court (--config FILE): %w", err)
	}
	if err != nil {
		return nil, nil, err
	}
	var courts []status.Court
	for _, name := range file.Names() {
		p := file.Profiles[name]
		repoURL, _ := p.Value("", "repo")
		if repoURL == "" {
			return nil, nil, fmt.Errorf("configuration file %s: profile %s names no repository (repo = URL)", file.Path, name)
		}
		court := status.Court{Label: p.Label, Primary: status.Site{Label: p.Label, URL: repoURL}, MaxAge: f.maxAge}
		if court.Label == "" {
			court.Label = name
		}
		if v, ok := p.Value("status", "max-age"); ok && !c.Flags().Changed("max-age") {
			if court.MaxAge, err = time.ParseDuration(v); err != nil || court.MaxAge < 0 {
				return nil, nil, fmt.Errorf("configuration file %s: profile.%s.status.max-age = %q: give a duration such as 26h", file.Path, name, v)
			}
		}
		for _, r := range p.Replicas {
			court.Replicas = append(court.Replicas, status.Site{Label: r.Label, URL: r.URL})
		}
		pf, _ := p.Value("", "password-file")
		pc, _ := p.Value("", "password-command")
		if pf != "" || pc != "" {
			passwords[repoURL] = passwordSource{file: pf, command: pc}
		}
		courts = append(courts, court)
	}
	if len(courts) == 0 {
		return nil, nil, fmt.Errorf("configuration file %s defines no profiles: add a [profile.NAME] for each court", file.Path)
	}
	return courts, passwords, nil
}

// statusSnapshots reads a court's snapshots with its password, through
// the local cache (one request per snapshot not yet cached); courts
// without a password source are looked at keyless.
func (g *globals) statusSnapshots(passwords map[string]passwordSource) status.SnapshotLister {
	if len(passwords) == 0 {
		return nil
	}
	// Key derivation takes tens to hundreds of MiB: two courts at a time.
	kdf := make(chan struct{}, 2)
	return func(ctx context.Context, court status.Court, be remote.Backend) ([]status.Snapshot, error) {
		src, ok := passwords[court.Primary.URL]
		if !ok {
			return nil, status.ErrNoPassword
		}
		var (
			pw  []byte
			err error
		)
		switch {
		case src.file != "":
			var b []byte
			if b, err = os.ReadFile(src.file); err == nil {
				pw, err = nonEmpty(trimNewline(b), "password file "+src.file)
			}
		case src.command != "":
			pw, err = commandPassword(src.command)
		default:
			pw = []byte(os.Getenv("COURTBAK_PASSWORD"))
		}
		if err != nil {
			return nil, err
		}
		kdf <- struct{}{}
		r, err := repo.Open(ctx, be, pw, g.repoOptions())
		debug.FreeOSMemory() // hand back the key derivation's memory
		<-kdf
		if err != nil {
			return nil, err
		}
		snaps, err := r.Snapshots(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]status.Snapshot, len(snaps))
		for i, s := range snaps {
			out[i] = status.Snapshot{ID: s.ID.String(), Time: s.Time, Host: s.Hostname, Paths: s.Paths}
		}
		return out, nil
	}
}

// printStatus prints one line per copy of each court, then what breaches.
func printStatus(g *globals, sum *status.Summary) {
	now := sum.Generated
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "court\tstatus\tnewest backup\tcopy\treplication\tlast verification\tsize\tgrowth/day")
	courts := sum.ByAttention()
	for _, c := range courts {
		state := "protected"
		if !c.OK {
			state = "ATTENTION"
		}
		for i, cp := range c.Copies {
			if i == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Label, state, c.NewestText(now), cp.Name(), cp.LagText(), cp.VerifyText(now), formatBytes(c.Bytes), formatBytes(c.GrowthPerDay))
			} else {
				fmt.Fprintf(tw, "\t\t\t%s\t%s\t%s\t\t\n", cp.Name(), cp.LagText(), cp.VerifyText(now))
			}
		}
	}
	_ = tw.Flush()
	for _, c := range courts {
		for _, b := range c.Breaches {
			fmt.Fprintf(g.stdout, "%s: %s\n", c.Label, b)
		}
	}
	fmt.Fprintln(g.stdout, sum.Headline())
}
