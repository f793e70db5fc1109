package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/courtbak/courtbak/cmd/courtbak/config"
	"github.com/courtbak/courtbak/cmd/courtbak/systemd"
)

// Paths the packages create (postinstall) and the units write to.
const (
	defaultUnitDir  = "/etc/systemd/system"
	packageCacheDir = "/var/cache/courtbak"
	packageReports  = "/var/lib/courtbak/reports"
	packageBinary   = "/usr/bin/courtbak"
	serviceUser     = "courtbak"
)

// templateCalendar is when the template timers shipped in the packages
// fire: the schedules of replication.md §3.1.
var templateCalendar = map[string]string{
	"backup":    "*-*-* 01:30:00",
	"replicate": "*-*-* *:15:00",
	"forget":    "*-*-* 05:00:00",
	"prune":     "*-*-* 05:30:00",
	"verify":    "Sun *-*-* 06:00:00",
}

func newScheduleCommand(g *globals) *cobra.Command {
	var unitDir string
	c := &cobra.Command{
		Use:   "schedule",
		Short: "Run a profile's jobs from systemd timers: install, remove, list",
		Long: `Write, remove or list the systemd service and timer units that run the jobs
of a profile (backup, replicate, forget, prune, verify) at the times its
schedule table gives. Units go to /etc/systemd/system unless --unit-dir says
otherwise (~/.config/systemd/user for user units).`,
	}
	c.PersistentFlags().StringVar(&unitDir, "unit-dir", defaultUnitDir, "write and read units in `DIR`")
	var binary string
	var template, userUnits bool
	install := &cobra.Command{
		Use:   "install",
		Short: "Write the service and timer units of --profile's schedule",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var jobs []systemd.Job
			if template {
				jobs = templateJobs()
			} else {
				var err error
				if jobs, err = g.profileJobs(binary, userUnits); err != nil {
					return err
				}
			}
			written, err := writeUnits(unitDir, jobs)
			if err != nil {
				return err
			}
			removed, err := removeUnits(unitDir, g.profileName, func(name string) bool {
				for _, j := range jobs {
					if strings.HasPrefix(name, j.UnitName()+".") {
						return false
					}
				}
				return true
			})
			if err != nil {
				return err
			}
			g.printf("wrote %s\n", strings.Join(written, ", "))
			if len(removed) > 0 {
				g.printf("removed %s (no longer in the schedule)\n", strings.Join(removed, ", "))
			}
			if !template {
				var timers []string
				for _, j := range jobs {
					timers = append(timers, j.UnitName()+".timer")
				}
				systemctl := "systemctl"
				if userUnits {
					systemctl = "systemctl --user"
				}
				g.printf("activate them with:\n  %s daemon-reload\n  %s enable --now %s\n", systemctl, systemctl, strings.Join(timers, " "))
			}
			return nil
		},
	}
	install.Flags().StringVar(&binary, "binary", "", "the courtbak `PATH` the units run (default: this executable)")
	install.Flags().BoolVar(&template, "template", false, "write the template units shipped in the packages (courtbak-backup@.service, …) instead")
	_ = install.Flags().MarkHidden("template")
	install.Flags().BoolVar(&userUnits, "user", false, "write units for your own systemd instance (systemctl --user): they run as you, into ~/.config/systemd/user unless --unit-dir is given")
	install.PreRunE = func(c *cobra.Command, _ []string) error {
		if userUnits && !c.Flags().Changed("unit-dir") {
			d, err := os.UserConfigDir()
			if err != nil {
				return fmt.Errorf("no user config directory, give --unit-dir: %w", err)
			}
			unitDir = filepath.Join(d, "systemd", "user")
		}
		return nil
	}

	remove := &cobra.Command{
		Use:   "remove",
		Short: "Remove the units 'schedule install' wrote for --profile",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if g.profileName == "" {
				return errors.New("give --profile NAME: the profile whose units to remove")
			}
			removed, err := removeUnits(unitDir, g.profileName, func(string) bool { return true })
			if err != nil {
				return err
			}
			if len(removed) == 0 {
				return fmt.Errorf("no units of profile %s in %s", g.profileName, unitDir)
			}
			g.printf("removed %s\nthen run: systemctl daemon-reload\n", strings.Join(removed, ", "))
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the scheduled jobs (of --profile, else of every profile)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			units, err := listUnits(unitDir, g.profileName)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(units)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "Profile\tJob\tSchedule\tUnit")
			for _, u := range units {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Profile, u.Job, u.OnCalendar, u.Timer)
			}
			return tw.Flush()
		},
	}
	c.AddCommand(install, remove, list)
	return c
}

// profileJobs builds a job per entry of --profile's schedule table.
func (g *globals) profileJobs(binary string, userUnits bool) ([]systemd.Job, error) {
	p := g.profile
	if p == nil {
		return nil, errors.New("give --profile NAME: the profile whose schedule to install")
	}
	if len(p.Schedule.Calendar) == 0 {
		return nil, fmt.Errorf("profile %s has no schedule: add a [profile.%s.schedule] table with backup = \"*-*-* 01:30:00\" and the like", p.Name, p.Name)
	}
	cfg, err := g.configPath()
	if err != nil {
		return nil, err
	}
	if cfg, err = filepath.Abs(cfg); err != nil {
		return nil, err
	}
	if binary == "" {
		if binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("cannot tell where courtbak is, give --binary PATH: %w", err)
		}
	}
	user := p.Schedule.User
	switch {
	case userUnits && user != "":
		return nil, fmt.Errorf("profile %s: schedule.user = %q is for system units; units for your own systemd instance (--user) run as you", p.Name, user)
	case userUnits:
	case user == "":
		user = serviceUser
	}
	var jobs []systemd.Job
	for _, name := range config.Jobs {
		cal, ok := p.Schedule.Calendar[name]
		if !ok {
			continue
		}
		j := systemd.Job{Profile: p.Name, Label: p.Label, Name: name, OnCalendar: cal, User: user,
			OnFailure: p.Schedule.OnFailure,
			Exec:      []string{binary, "--config", cfg, "--profile", p.Name, name}}
		if dir, ok := p.Value(name, "cache-dir"); ok {
			j.ReadWritePaths = append(j.ReadWritePaths, dir)
		} else {
			j.Environment = []string{"COURTBAK_CACHE_DIR=" + packageCacheDir}
			j.ReadWritePaths = append(j.ReadWritePaths, packageCacheDir)
		}
		// Local repositories are written by every job (verify --repair
		// included); S3 ones need no path.
		for _, u := range append(p.Options["repo"], p.Options["replica"]...) {
			if dir, ok := localPath(u); ok {
				j.ReadWritePaths = append(j.ReadWritePaths, dir)
			}
		}
		for _, r := range p.Commands[name]["report"] {
			j.ReadWritePaths = append(j.ReadWritePaths, filepath.Dir(r))
		}
		if name == "backup" {
			j.ReadOnlyPaths = p.Paths
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// localPath returns the directory of a local repository URL.
func localPath(url string) (string, bool) {
	if strings.HasPrefix(url, "s3:") {
		return "", false
	}
	p := strings.TrimPrefix(strings.TrimPrefix(url, "file://localhost"), "file://")
	abs, err := filepath.Abs(p)
	return abs, err == nil
}

// templateJobs are the template units of the packages: one per job,
// instantiated with the profile name (courtbak-backup@city-a.timer).
func templateJobs() []systemd.Job {
	var jobs []systemd.Job
	for _, name := range config.Jobs {
		jobs = append(jobs, systemd.Job{Name: name, OnCalendar: templateCalendar[name], User: serviceUser,
			Exec:           []string{packageBinary, "--profile", "%i", name},
			Environment:    []string{"COURTBAK_CACHE_DIR=" + packageCacheDir},
			ReadWritePaths: []string{packageCacheDir, packageReports}})
	}
	return jobs
}

// writeUnits writes each job's service and timer, refusing to replace a
// file courtbak did not write.
func writeUnits(dir string, jobs []systemd.Job) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	for _, j := range jobs {
		for _, u := range []struct{ name, text string }{{j.UnitName() + ".service", j.Service()}, {j.UnitName() + ".timer", j.Timer()}} {
			path := filepath.Join(dir, u.name)
			if ours, err := isOurs(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return written, err
			} else if err == nil && !ours {
				return written, fmt.Errorf("%s exists and was not written by courtbak: remove or rename it first", path)
			}
			if err := writeFileAtomic(path, []byte(u.text), 0o644); err != nil {
				return written, fmt.Errorf("write %s: %w", path, err)
			}
			written = append(written, u.name)
		}
	}
	return written, nil
}

// isOurs reports whether the unit file at path starts with the marker.
func isOurs(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	first, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && first == "" {
		return false, nil
	}
	return strings.HasPrefix(first, systemd.Marker), nil
}

// scheduledUnit is one timer courtbak wrote, as 'schedule list' shows it.
type scheduledUnit struct {
	Profile    string `json:"profile"`
	Job        string `json:"job"`
	OnCalendar string `json:"on_calendar"`
	Timer      string `json:"timer"`
}

// listUnits reads the timers courtbak wrote in dir, of one profile or all
// ("").
func listUnits(dir, profile string) ([]scheduledUnit, error) {
	names, err := filepath.Glob(filepath.Join(dir, "courtbak-*.timer"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []scheduledUnit
	for _, path := range names {
		if ours, err := isOurs(path); err != nil || !ours {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		u := scheduledUnit{Timer: filepath.Base(path)}
		base := strings.TrimSuffix(strings.TrimPrefix(u.Timer, "courtbak-"), ".timer")
		for _, job := range config.Jobs {
			if p, ok := strings.CutSuffix(base, "-"+job); ok {
				u.Profile, u.Job = p, job
			}
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "OnCalendar="); ok {
				u.OnCalendar = v
			}
		}
		if u.Job == "" || (profile != "" && u.Profile != profile) {
			continue // a template, or another profile
		}
		out = append(out, u)
	}
	return out, nil
}

// removeUnits deletes the units courtbak wrote for profile whose file
// name drop selects, and the links that enabled them.
func removeUnits(dir, profile string, drop func(name string) bool) ([]string, error) {
	if profile == "" {
		return nil, nil
	}
	var removed []string
	for _, ext := range []string{".service", ".timer"} {
		for _, job := range config.Jobs {
			name := "courtbak-" + profile + "-" + job + ext
			path := filepath.Join(dir, name)
			if ours, err := isOurs(path); err != nil || !ours || !drop(name) {
				continue
			}
			links, _ := filepath.Glob(filepath.Join(dir, "*.wants", name))
			for _, l := range append(links, path) {
				if err := os.Remove(l); err != nil {
					return removed, err
				}
			}
			removed = append(removed, name)
		}
	}
	return removed, nil
}
