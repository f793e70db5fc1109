package metrics_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/courtbak/courtbak/cmd/courtbak/internal/metrics"
)

func parse(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("the file does not parse as Prometheus text: %v", err)
	}
	return mfs
}

// value returns the sample of name with exactly these labels.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	for _, m := range mfs[name].GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, lp := range m.GetLabel() {
			if labels[lp.GetName()] != lp.GetValue() {
				match = false
			}
		}
		if match {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func f(v float64) *float64 { return &v }

func TestWriteKeepsOtherCommandsAndTheLastSuccess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "courtbak.prom")
	repo := "s3:https://center.example/courtbak/city-a"
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	backup := map[string]string{"command": "backup", "repository": repo}
	verify := map[string]string{"command": "verify", "repository": repo}

	if err := metrics.Write(path, metrics.Run{Command: "backup", Repository: repo, Start: t0, Duration: 90 * time.Second,
		Files: f(120), Bytes: f(5 << 30), BytesAdded: f(1 << 20), Errors: f(0), LatestSnapshot: t0.Add(89 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := metrics.Write(path, metrics.Run{Command: "verify", Repository: repo, Start: t0.Add(time.Hour), Duration: time.Minute, Errors: f(0),
		ReplicaSynced: map[string]time.Time{"s3:https://dr.example/courtbak/city-a": t0}}); err != nil {
		t.Fatal(err)
	}
	// The next backup fails: its exit code and time are recorded, its
	// counts are gone, and the last success stays that of the first one.
	if err := metrics.Write(path, metrics.Run{Command: "backup", Repository: repo, Start: t0.Add(24 * time.Hour), Duration: 3 * time.Second, ExitCode: 1}); err != nil {
		t.Fatal(err)
	}
	mfs := parse(t, path)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{metrics.LastSuccessTimestamp, backup, float64(t0.Add(90 * time.Second).Unix())},
		{metrics.LastRunExitCode, backup, 1},
		{metrics.LastRunTimestamp, backup, float64(t0.Add(24 * time.Hour).Unix())},
		{metrics.LastRunDuration, backup, 3},
		{metrics.LastSuccessTimestamp, verify, float64(t0.Add(time.Hour + time.Minute).Unix())},
		{metrics.LastRunExitCode, verify, 0},
		{metrics.LastRunErrors, verify, 0},
		{metrics.LatestSnapshotTime, map[string]string{"repository": repo}, float64(t0.Add(89 * time.Second).Unix())},
		{metrics.LatestSnapshotAge, map[string]string{"repository": repo}, 1},
		{metrics.ReplicaSyncedTimstamp, map[string]string{"repository": repo, "replica": "s3:https://dr.example/courtbak/city-a"}, float64(t0.Unix())},
	} {
		got, ok := value(t, mfs, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := value(t, mfs, metrics.LastRunFiles, backup); ok {
		t.Error("the failed backup kept the counts of the earlier one")
	}
	// A later success replaces the time; the file is world-readable for
	// node_exporter and no temporary file is left beside it.
	if err := metrics.Write(path, metrics.Run{Command: "backup", Repository: repo, Start: t0.Add(48 * time.Hour), Duration: time.Second}); err != nil {
		t.Fatal(err)
	}
	if got, _ := value(t, parse(t, path), metrics.LastSuccessTimestamp, backup); got != float64(t0.Add(48*time.Hour+time.Second).Unix()) {
		t.Errorf("last success after a new success: %v", got)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if e.Name() != "courtbak.prom" && e.Name() != "courtbak.prom.lock" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// A file that is not Prometheus text (written by something else) is
// replaced rather than failing the run.
func TestWriteOverAnUnparsableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "courtbak.prom")
	if err := os.WriteFile(path, []byte("this is { not prometheus\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := metrics.Write(path, metrics.Run{Command: "prune", Start: time.Now(), Duration: time.Second, Bytes: f(42)}); err != nil {
		t.Fatal(err)
	}
	if got, ok := value(t, parse(t, path), metrics.LastRunBytes, map[string]string{"command": "prune", "repository": ""}); !ok || got != 42 {
		t.Errorf("bytes = %v %v", got, ok)
	}
}
