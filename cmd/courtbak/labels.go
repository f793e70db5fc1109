package main

import (
	"fmt"

	"github.com/spf13/pflag"
)

// labelFlags name the court and its copies in reports and status output:
// people know "City court of Novi Sad", "Provincial center" and "DR pool",
// not bucket URLs. A profile file fills the same fields.
type labelFlags struct {
	court   string
	title   string
	primary string
	// replicas label the --replica URLs, in the same order.
	replicas []string
}

func (l *labelFlags) register(fl *pflag.FlagSet, title bool) {
	fl.StringVar(&l.court, "court", "", "the court's `NAME`, shown at the top (e.g. \"City court of Novi Sad\")")
	if title {
		fl.StringVar(&l.title, "title", "", "the report's `TITLE` (e.g. \"Monthly audit, March 2025\")")
	}
	fl.StringVar(&l.primary, "label", "", "`NAME` of the --repo copy (e.g. \"City court server\")")
	fl.StringArrayVar(&l.replicas, "replica-label", nil, "`NAME` of a --replica, in the order the replicas are given (repeatable)")
}

// replicaLabels pairs the labels with the replicas: one per replica, ""
// where none was given.
func (l *labelFlags) replicaLabels(replicas []string) ([]string, error) {
	if len(l.replicas) > len(replicas) {
		return nil, fmt.Errorf("%d --replica-label given for %d --replica: give one label per replica, in the same order", len(l.replicas), len(replicas))
	}
	out := make([]string, len(replicas))
	copy(out, l.replicas)
	return out, nil
}
