// Package systemd writes the systemd service and timer units that run
// courtbak's scheduled jobs: one pair per job of a profile (written by
// `courtbak schedule install`), or template pairs instantiated with a
// profile name (courtbak-backup@city-a.timer, shipped in the packages).
//
// Every service is hardened: it sees the whole filesystem read-only
// except the paths it must write (cache, reports, local repositories),
// runs as an unprivileged user with no capabilities (a backup keeps
// CAP_DAC_READ_SEARCH, to read recordings it does not own, and nothing
// else), and cannot gain privileges.
package systemd

import (
	"fmt"
	"strings"
)

// Marker starts every unit this package writes, so that courtbak removes
// only units it wrote.
const Marker = "# Written by courtbak schedule"

// Job is one scheduled courtbak command.
type Job struct {
	// Profile is the profile's name; empty for a template unit, whose
	// instance name (%i) is the profile.
	Profile string
	// Label describes the profile for humans, e.g. "City court of A".
	Label string
	// Name is the command: backup, replicate, forget, prune or verify.
	Name string
	// OnCalendar is the timer's systemd calendar expression.
	OnCalendar string
	// Exec is the command line; in a template, an argument "%i" stands
	// for the instance.
	Exec []string
	// User runs the job; empty for a unit of a user's own systemd
	// instance (systemctl --user), which runs as that user and can grant
	// no capabilities.
	User string
	// ReadWritePaths may be written; ReadOnlyPaths are the backed-up
	// paths. A missing path does not stop the unit: courtbak reports it.
	ReadWritePaths, ReadOnlyPaths []string
	// Environment holds NAME=VALUE settings.
	Environment []string
	// OnFailure names a unit started when the job fails.
	OnFailure string
}

// UnitName is the name of the job's units without the suffix:
// courtbak-city-a-backup, or courtbak-backup@ for a template.
func (j Job) UnitName() string {
	if j.Profile == "" {
		return "courtbak-" + j.Name + "@"
	}
	return "courtbak-" + j.Profile + "-" + j.Name
}

func (j Job) who() string {
	if j.Profile == "" {
		return "profile %i"
	}
	who := "profile " + escape(j.Profile)
	if j.Label != "" {
		who += " (" + escape(j.Label) + ")"
	}
	return who
}

// Service renders the .service unit.
func (j Job) Service() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("%s", j.header())
	line("[Unit]")
	line("Description=courtbak %s of %s", j.Name, j.who())
	line("Documentation=man:courtbak-%s(1) https://github.com/courtbak/courtbak/blob/main/docs/usage.md", j.Name)
	line("Wants=network-online.target")
	line("After=network-online.target")
	if j.OnFailure != "" {
		line("OnFailure=%s", j.OnFailure)
	}
	line("")
	line("[Service]")
	line("Type=oneshot")
	if j.User != "" {
		line("User=%s", j.User)
		line("Group=%s", j.User)
	}
	for _, e := range j.Environment {
		line("Environment=%s", quote(e, false, false))
	}
	args := make([]string, len(j.Exec))
	for i, a := range j.Exec {
		args[i] = quote(a, j.Profile == "" && a == "%i", true)
	}
	line("ExecStart=%s", strings.Join(args, " "))
	// A signal makes courtbak finish the uploads in progress; give it
	// time before the kill.
	line("TimeoutStopSec=5min")
	nice, ioClass := 10, "best-effort"
	if j.Name == "verify" {
		nice, ioClass = 15, "idle"
	}
	line("Nice=%d", nice)
	line("IOSchedulingClass=%s", ioClass)
	if ioClass == "best-effort" {
		line("IOSchedulingPriority=7")
	}
	line("UMask=0077")
	for _, p := range j.ReadWritePaths {
		line("ReadWritePaths=%s", quote("-"+p, false, false))
	}
	for _, p := range j.ReadOnlyPaths {
		line("ReadOnlyPaths=%s", quote("-"+p, false, false))
	}
	for _, l := range hardening {
		line("%s", l)
	}
	switch {
	case j.User == "":
		// A user instance cannot hand out capabilities.
	case j.Name == "backup":
		// Read the recordings whatever their owner, write nothing more.
		line("AmbientCapabilities=CAP_DAC_READ_SEARCH")
		line("CapabilityBoundingSet=CAP_DAC_READ_SEARCH")
	default:
		line("CapabilityBoundingSet=")
	}
	return b.String()
}

var hardening = []string{
	"ProtectSystem=strict",
	"ProtectHome=read-only",
	"PrivateTmp=yes",
	"PrivateDevices=yes",
	"NoNewPrivileges=yes",
	"ProtectKernelTunables=yes",
	"ProtectKernelModules=yes",
	"ProtectKernelLogs=yes",
	"ProtectControlGroups=yes",
	"ProtectClock=yes",
	"ProtectHostname=yes",
	"RestrictSUIDSGID=yes",
	"RestrictRealtime=yes",
	"RestrictNamespaces=yes",
	"LockPersonality=yes",
	"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
	"SystemCallArchitectures=native",
}

// Timer renders the .timer unit.
func (j Job) Timer() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("%s", j.header())
	line("[Unit]")
	line("Description=courtbak %s of %s, on schedule", j.Name, j.who())
	line("")
	line("[Timer]")
	line("OnCalendar=%s", j.OnCalendar)
	// A run missed while the machine was off starts at boot.
	line("Persistent=true")
	line("AccuracySec=1min")
	line("")
	line("[Install]")
	line("WantedBy=timers.target")
	return b.String()
}

func (j Job) header() string {
	if j.Profile == "" {
		return Marker + "; a template: systemctl enable --now courtbak-" + j.Name + "@PROFILE.timer"
	}
	return Marker + "; 'courtbak schedule remove' deletes it."
}

// escape doubles % (systemd's specifier character) in free text.
func escape(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// quote makes s one word of a systemd setting: specifiers escaped
// (unless keep) and, when needed, in double quotes; in a command line
// (exec), $ is escaped too.
func quote(s string, keep, exec bool) string {
	if !keep {
		s = escape(s)
	}
	if exec {
		s = strings.ReplaceAll(s, "$", "$$")
	}
	if s != "" && !strings.ContainsAny(s, " \t\n\"'\\;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}
