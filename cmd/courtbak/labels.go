package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/courtbak/courtbak/cmd/courtbak/config"
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

// fromProfile fills the names the flags left empty from profile p (nil:
// none): the court is the profile's label, and so is the repository's
// copy.
func (l *labelFlags) fromProfile(p *config.Profile, repoURL string) {
	if p == nil {
		return
	}
	if l.court == "" {
		l.court = p.Label
	}
	if l.primary == "" {
		l.primary = p.LabelOf(repoURL)
	}
}

// replicaLabels pairs the labels with the replicas: one per replica, taken
// from the profile (nil: none) where no --replica-label names it, ""
// where neither does.
func (l *labelFlags) replicaLabels(replicas []string, p *config.Profile) ([]string, error) {
	if len(l.replicas) > len(replicas) {
		return nil, fmt.Errorf("%d --replica-label given for %d --replica: give one label per replica, in the same order", len(l.replicas), len(replicas))
	}
	out := make([]string, len(replicas))
	copy(out, l.replicas)
	for i, u := range replicas {
		if out[i] == "" && p != nil {
			out[i] = p.LabelOf(u)
		}
	}
	return out, nil
}
