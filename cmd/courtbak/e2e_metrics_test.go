package main_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// sample returns the value of name whose labels include want.
func sample(t *testing.T, path, name string, want map[string]string) (float64, bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s does not parse as Prometheus text: %v", path, err)
	}
	for _, m := range mfs[name].GetMetric() {
		if hasLabels(m, want) {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// --metrics-file records each command for node_exporter; a failing run
// records its exit code and keeps the last success of earlier runs.
func TestMetricsFileAfterEachCommand(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	prom := filepath.Join(t.TempDir(), "courtbak.prom")
	src := generate(t, 31, 2<<20)
	before := float64(time.Now().Unix())
	s := e.backup("--metrics-file", prom, src)
	backup := map[string]string{"command": "backup", "repository": e.repo}
	for name, want := range map[string]float64{
		"courtbak_last_run_exit_code":   0,
		"courtbak_last_run_bytes":       float64(s.BytesProcessed),
		"courtbak_last_run_bytes_added": float64(s.BytesAdded),
		"courtbak_last_run_errors":      0,
	} {
		if got, ok := sample(t, prom, name, backup); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if got, _ := sample(t, prom, "courtbak_last_run_files", backup); got < 40 {
		t.Errorf("files = %v", got)
	}
	success, _ := sample(t, prom, "courtbak_last_success_timestamp_seconds", backup)
	if success < before {
		t.Errorf("last success %v before the run started (%v)", success, before)
	}
	if got, ok := sample(t, prom, "courtbak_latest_snapshot_timestamp_seconds", map[string]string{"repository": e.repo}); !ok || got < before-1 {
		t.Errorf("latest snapshot time = %v %v", got, ok)
	}

	// A dry run records nothing: it is not a backup.
	before2, _ := os.ReadFile(prom)
	e.must("--metrics-file", prom, "backup", "--dry-run", src)
	if after, _ := os.ReadFile(prom); string(after) != string(before2) {
		t.Error("backup --dry-run changed the metrics file")
	}

	// replicate records when the replica was brought up to date.
	replica := filepath.Join(t.TempDir(), "replica")
	e.must("--metrics-file", prom, "replicate", "--to", replica)
	if got, ok := sample(t, prom, "courtbak_replica_synced_timestamp_seconds", map[string]string{"repository": e.repo, "replica": replica}); !ok || got < before {
		t.Errorf("replica synced = %v %v", got, ok)
	}

	// A failing backup (wrong password, exit 12): its exit code is
	// there, the last success is the earlier one.
	wrong := *e
	wrong.password = "wrong"
	if r := wrong.run("--metrics-file", prom, "backup", src); r.code != 12 {
		t.Fatalf("wrong password: exit %d", r.code)
	}
	if got, _ := sample(t, prom, "courtbak_last_run_exit_code", backup); got != 12 {
		t.Errorf("exit code after the failure = %v", got)
	}
	if got, _ := sample(t, prom, "courtbak_last_success_timestamp_seconds", backup); got != success {
		t.Errorf("last success changed from %v to %v by a failing run", success, got)
	}
	if _, ok := sample(t, prom, "courtbak_last_run_bytes", backup); ok {
		t.Error("the failing run kept the counts of the earlier one")
	}
	// verify and prune come in beside them.
	e.must("--metrics-file", prom, "verify")
	e.must("--metrics-file", prom, "prune")
	for _, cmd := range []string{"verify", "prune", "replicate"} {
		if got, ok := sample(t, prom, "courtbak_last_run_exit_code", map[string]string{"command": cmd}); !ok || got != 0 {
			t.Errorf("%s exit code = %v %v", cmd, got, ok)
		}
	}
	if got, ok := sample(t, prom, "courtbak_last_run_errors", map[string]string{"command": "verify"}); !ok || got != 0 {
		t.Errorf("verify errors = %v %v", got, ok)
	}
	if got, _ := sample(t, prom, "courtbak_last_success_timestamp_seconds", backup); got != success {
		t.Errorf("other commands changed backup's last success: %v", got)
	}
}
