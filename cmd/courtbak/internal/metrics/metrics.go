// Package metrics writes the outcome of a courtbak run as a Prometheus
// text file for node_exporter's textfile collector.
//
// One file serves every command and repository of a host: Write reads
// the previous file, keeps the samples of other commands and repositories,
// replaces those of this run, and keeps this command's last success time
// when the run failed, so that a failing run never erases when the job
// last worked. The file is replaced atomically (a temporary file in the
// same directory, then a rename) under an advisory lock on PATH.lock, so
// node_exporter never reads half a file and concurrent runs do not lose
// each other's samples.
package metrics

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Run is what one command did.
type Run struct {
	Command    string
	Repository string // location without credentials; "" without one
	Start      time.Time
	Duration   time.Duration
	ExitCode   int
	// Files, Bytes, BytesAdded and Errors are set where the command
	// counts them (nil: not reported by this run).
	Files, Bytes, BytesAdded, Errors *float64
	// LatestSnapshot is the time of the repository's newest snapshot,
	// where the command saw it (zero: unknown).
	LatestSnapshot time.Time
	// ReplicaSynced maps a replica's location to when this run finished
	// bringing it up to date with the repository.
	ReplicaSynced map[string]time.Time
}

// Metric names.
const (
	LastRunTimestamp      = "courtbak_last_run_timestamp_seconds"
	LastRunDuration       = "courtbak_last_run_duration_seconds"
	LastRunExitCode       = "courtbak_last_run_exit_code"
	LastSuccessTimestamp  = "courtbak_last_success_timestamp_seconds"
	LastRunFiles          = "courtbak_last_run_files"
	LastRunBytes          = "courtbak_last_run_bytes"
	LastRunBytesAdded     = "courtbak_last_run_bytes_added"
	LastRunErrors         = "courtbak_last_run_errors"
	LatestSnapshotTime    = "courtbak_latest_snapshot_timestamp_seconds"
	LatestSnapshotAge     = "courtbak_latest_snapshot_age_seconds"
	ReplicaSyncedTimstamp = "courtbak_replica_synced_timestamp_seconds"
)

type family struct {
	name, help string
	labels     []string
	// perRun families describe one run of a command: this run's samples
	// replace all earlier ones of the same command and repository.
	perRun bool
}

var families = []family{
	{LastRunTimestamp, "When the command last ran (start, Unix time).", []string{"command", "repository"}, true},
	{LastRunDuration, "How long the command's last run took.", []string{"command", "repository"}, true},
	{LastRunExitCode, "Exit code of the command's last run (0 success, 1 error, 3 backup with unreadable files, 10 no repository, 11 locked, 12 wrong password, 130 interrupted).", []string{"command", "repository"}, true},
	{LastSuccessTimestamp, "When the command last succeeded (exit code 0; end of the run, Unix time). Kept when later runs fail.", []string{"command", "repository"}, false},
	{LastRunFiles, "Files the command's last run processed (backup: files in the snapshot; restore: files restored; verify: files checked).", []string{"command", "repository"}, true},
	{LastRunBytes, "Bytes the command's last run processed (backup: read; replicate: copied; verify: read; prune: deleted).", []string{"command", "repository"}, true},
	{LastRunBytesAdded, "Bytes the command's last run added to the repository after deduplication and compression.", []string{"command", "repository"}, true},
	{LastRunErrors, "Errors of the command's last run (backup: unreadable files; verify: unresolved problems; replicate: replicas that failed).", []string{"command", "repository"}, true},
	{LatestSnapshotTime, "Time of the repository's newest snapshot when a command last saw it (alert on time() minus this).", []string{"repository"}, false},
	{LatestSnapshotAge, "Age of the repository's newest snapshot when a command last saw it.", []string{"repository"}, false},
	{ReplicaSyncedTimstamp, "When replicate last brought the replica up to date with the repository (replica lag: time() minus this).", []string{"repository", "replica"}, false},
}

// Write records run in the file at path, keeping what earlier runs of
// other commands (and this command's last success) recorded there.
func Write(path string, run Run) error {
	lf, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	defer lf.Close()
	if err := lock(lf); err != nil {
		return fmt.Errorf("metrics file: lock %s: %w", lf.Name(), err)
	}
	old, err := readFile(path)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	vecs := map[string]*prometheus.GaugeVec{}
	for _, f := range families {
		vecs[f.name] = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: f.name, Help: f.help}, f.labels)
		reg.MustRegister(vecs[f.name])
	}
	// written holds the samples this run set, which the previous
	// file's do not override.
	written := map[string]bool{}
	set := func(name string, v float64, labels ...string) {
		vecs[name].WithLabelValues(labels...).Set(v)
		written[sampleKey(name, labels)] = true
	}
	key := []string{run.Command, run.Repository}
	end := run.Start.Add(run.Duration)
	set(LastRunTimestamp, unix(run.Start), key...)
	set(LastRunDuration, run.Duration.Seconds(), key...)
	set(LastRunExitCode, float64(run.ExitCode), key...)
	if run.ExitCode == 0 {
		set(LastSuccessTimestamp, unix(end), key...)
	}
	for name, v := range map[string]*float64{LastRunFiles: run.Files, LastRunBytes: run.Bytes, LastRunBytesAdded: run.BytesAdded, LastRunErrors: run.Errors} {
		if v != nil {
			set(name, *v, key...)
		}
	}
	if !run.LatestSnapshot.IsZero() {
		set(LatestSnapshotTime, unix(run.LatestSnapshot), run.Repository)
		set(LatestSnapshotAge, max(0, end.Sub(run.LatestSnapshot).Seconds()), run.Repository)
	}
	for replica, t := range run.ReplicaSynced {
		set(ReplicaSyncedTimstamp, unix(t), run.Repository, replica)
	}
	carryOver(old, vecs, written, key)
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	return nil
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// carryOver adds the previous file's samples that this run did not
// replace: per-run families of other commands or repositories, and the
// lasting families (last success, snapshot times, replica sync) wherever
// this run set no value of its own.
func carryOver(old map[string]*dto.MetricFamily, vecs map[string]*prometheus.GaugeVec, written map[string]bool, key []string) {
	for _, f := range families {
		mf := old[f.name]
		if mf == nil {
			continue
		}
		for _, m := range mf.GetMetric() {
			values, ok := labelValues(m, f.labels)
			if !ok || m.GetGauge() == nil || written[sampleKey(f.name, values)] {
				continue
			}
			if f.perRun && values[0] == key[0] && values[1] == key[1] {
				continue
			}
			vecs[f.name].WithLabelValues(values...).Set(m.GetGauge().GetValue())
		}
	}
}

// labelValues returns m's values of names, in that order; false unless m
// has exactly those labels.
func labelValues(m *dto.Metric, names []string) ([]string, bool) {
	if len(m.GetLabel()) != len(names) {
		return nil, false
	}
	byName := map[string]string{}
	for _, lp := range m.GetLabel() {
		byName[lp.GetName()] = lp.GetValue()
	}
	values := make([]string, len(names))
	for i, n := range names {
		v, ok := byName[n]
		if !ok {
			return nil, false
		}
		values[i] = v
	}
	return values, true
}

func sampleKey(name string, values []string) string {
	return name + "\xff" + strings.Join(values, "\xff")
}

// readFile parses the previous file; a missing file is empty, and a file
// that does not parse (written by something else) is started afresh
// rather than failing the run.
func readFile(path string) (map[string]*dto.MetricFamily, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("metrics file: %w", err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		return nil, nil
	}
	return mfs, nil
}
