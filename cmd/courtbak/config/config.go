// Package config reads courtbak's configuration file: named profiles, each
// a site's repository, its replicas with human labels, and the option
// values of courtbak's commands, so that
//
//	courtbak --profile city-a backup
//
// replaces a hand-written wrapper script.
//
// The file is TOML. A profile's keys are the long names of courtbak's flags
// (global flags at the top of the profile, a command's flags in the table
// named after the command), plus a few keys of its own: label, replica
// (a list of {url, label}), backup.paths and the schedule table. The
// package does not know courtbak's flags: the caller passes a Schema
// listing them, so a new flag is a valid key without a change here, and a
// key that is not a flag is an error naming the key and the file.
//
// Labels (the profile's own, for its repository, and each replica's) are
// for humans: reports and messages may show them next to a location.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// SystemPath is the configuration file tried first when none is given.
const SystemPath = "/etc/courtbak/courtbak.toml"

// DefaultPaths are the configuration files tried, in order, when neither
// --config nor COURTBAK_CONFIG names one: the system-wide file, then the
// user's (os.UserConfigDir()/courtbak/courtbak.toml).
func DefaultPaths() []string {
	paths := []string{SystemPath}
	if d, err := os.UserConfigDir(); err == nil {
		paths = append(paths, filepath.Join(d, "courtbak", "courtbak.toml"))
	}
	return paths
}

// Jobs are the commands a profile can schedule, in the order a day runs
// them.
var Jobs = []string{"backup", "replicate", "forget", "prune", "verify"}

// Schema is what the caller accepts as keys: Global the global flags (keys
// at the top of a profile), Commands each command's own flags (keys of the
// table named after the command).
type Schema struct {
	Global   map[string]bool
	Commands map[string]map[string]bool
}

// File is a parsed configuration file.
type File struct {
	Path     string
	Profiles map[string]*Profile
}

// Profile is one named site configuration.
type Profile struct {
	Name string
	// Label names the site for humans, e.g. "City court of A".
	Label string
	// Replicas are the profile's replicas in priority order; their URLs
	// are also the value of the replica option.
	Replicas []Replica
	// Options are global flag values, Commands each command's flag
	// values; both by flag name.
	Options  Options
	Commands map[string]Options
	// Paths are what backup saves when the command line names none.
	Paths []string
	// Schedule says when each job runs as a systemd timer.
	Schedule Schedule
}

// Replica is one replica of a profile's repository.
type Replica struct {
	URL string
	// Label names it for humans, e.g. "Provincial center".
	Label string
}

// Options maps a flag name to its values: one for a single-valued flag,
// any number for a repeatable one, each as it would be written on the
// command line.
type Options map[string][]string

// Schedule is the schedule table of a profile.
type Schedule struct {
	// Calendar maps a job (one of Jobs) to a systemd OnCalendar
	// expression, e.g. "*-*-* 01:30:00".
	Calendar map[string]string
	// User runs the jobs ("courtbak" when empty).
	User string
	// OnFailure is a systemd unit started when a job fails, e.g.
	// "courtbak-notify@%n.service".
	OnFailure string
}

// Load reads and checks the configuration file at path: every profile,
// not just the one to be used, so a mistake shows on the first run.
func Load(path string, schema Schema) (*File, error) {
	var raw map[string]any
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			// The parser quotes the text it stopped at, which may be a
			// password or secret typed into the file: it is not shown.
			return nil, fmt.Errorf("configuration file %s: line %d (key %s): %s (the text there is not shown: it may be a secret)", path, pe.Position.Line, pe.LastKey, quotedRE.ReplaceAllString(pe.Message, `"…"`))
		}
		return nil, fmt.Errorf("configuration file %s: %w", path, err)
	}
	f := &File{Path: path, Profiles: map[string]*Profile{}}
	for k, v := range raw {
		if k != "profile" {
			return nil, f.errorf("unknown key %q: the file holds [profile.NAME] tables only", k)
		}
		profiles, ok := v.(map[string]any)
		if !ok {
			return nil, f.errorf("profile must be a table of profiles ([profile.NAME])")
		}
		for name, pv := range profiles {
			t, ok := pv.(map[string]any)
			if !ok {
				return nil, f.errorf("profile.%s must be a table", name)
			}
			p, err := parseProfile(name, t, schema)
			if err != nil {
				return nil, f.errorf("%v", err)
			}
			f.Profiles[name] = p
		}
	}
	return f, nil
}

// quotedRE matches the quoted text in a TOML parser's message.
var quotedRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'`)

func (f *File) errorf(format string, args ...any) error {
	return fmt.Errorf("configuration file %s: %s", f.Path, fmt.Sprintf(format, args...))
}

// Profile returns the named profile.
func (f *File) Profile(name string) (*Profile, error) {
	if p, ok := f.Profiles[name]; ok {
		return p, nil
	}
	names := f.Names()
	if len(names) == 0 {
		return nil, f.errorf("no profile %q: the file defines no profiles", name)
	}
	return nil, f.errorf("no profile %q (it defines: %s)", name, strings.Join(names, ", "))
}

// Names lists the profiles, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Profiles))
	for n := range f.Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LabelOf returns the label of the repository or replica at url, or "".
func (p *Profile) LabelOf(url string) string {
	if r := p.Options["repo"]; len(r) == 1 && r[0] == url {
		return p.Label
	}
	for _, r := range p.Replicas {
		if r.URL == url {
			return r.Label
		}
	}
	return ""
}

// Value returns the single value of a flag in the command's table, else
// among the global options; ok is false when the profile does not set it.
func (p *Profile) Value(command, flag string) (string, bool) {
	if v := p.Commands[command][flag]; len(v) > 0 {
		return v[len(v)-1], true
	}
	if v := p.Options[flag]; len(v) > 0 {
		return v[len(v)-1], true
	}
	return "", false
}

// Keys of a profile that are not flags.
const (
	keyLabel    = "label"
	keyReplica  = "replica"
	keySchedule = "schedule"
	keyPaths    = "paths"
)

func parseProfile(name string, t map[string]any, schema Schema) (*Profile, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	p := &Profile{Name: name, Options: Options{}, Commands: map[string]Options{}}
	where := "profile." + name
	for _, k := range sortedKeys(t) {
		v := t[k]
		key := where + "." + k
		switch {
		case k == keyLabel:
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%s must be a string", key)
			}
			p.Label = s
		case k == keyReplica:
			reps, err := parseReplicas(key, v)
			if err != nil {
				return nil, err
			}
			p.Replicas = reps
			for _, r := range reps {
				p.Options[keyReplica] = append(p.Options[keyReplica], r.URL)
			}
		case k == keySchedule:
			s, err := parseSchedule(key, v)
			if err != nil {
				return nil, err
			}
			p.Schedule = s
		case schema.Commands[k] != nil:
			tab, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s must be a table ([%s]) of the command's options", key, key)
			}
			opts := Options{}
			for _, ck := range sortedKeys(tab) {
				cv := tab[ck]
				if k == "backup" && ck == keyPaths {
					if p.Paths, ok = stringList(cv); !ok {
						return nil, fmt.Errorf("%s.%s must be a list of strings", key, ck)
					}
					continue
				}
				if !schema.Commands[k][ck] {
					return nil, fmt.Errorf("unknown key %s.%s: 'courtbak %s' has no --%s option", key, ck, k, ck)
				}
				vals, err := values(key+"."+ck, cv)
				if err != nil {
					return nil, err
				}
				opts[ck] = vals
			}
			p.Commands[k] = opts
		case schema.Global[k]:
			vals, err := values(key, v)
			if err != nil {
				return nil, err
			}
			p.Options[k] = vals
		default:
			return nil, fmt.Errorf("unknown key %s: not a global option of courtbak, nor a command's table", key)
		}
	}
	return p, nil
}

// checkName keeps profile names usable in systemd unit names and file
// names.
func checkName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("profile name %q: give 1 to 64 characters", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("profile name %q: use letters, digits, '-', '_' and '.' only", name)
		}
	}
	return nil
}

func parseReplicas(key string, v any) ([]Replica, error) {
	// [[replica]] tables decode as []map[string]any, an inline list of
	// tables as []any.
	list, ok := v.([]map[string]any)
	if anys, isList := v.([]any); isList {
		ok = true
		for _, e := range anys {
			t, isTable := e.(map[string]any)
			ok = ok && isTable
			list = append(list, t)
		}
	}
	if !ok {
		return nil, fmt.Errorf("%s must be a list of tables with url and label ([[%s]])", key, key)
	}
	var out []Replica
	for i, t := range list {
		var r Replica
		for _, k := range sortedKeys(t) {
			s, ok := t[k].(string)
			switch {
			case !ok:
				return nil, fmt.Errorf("%s[%d].%s must be a string", key, i, k)
			case k == "url":
				r.URL = s
			case k == "label":
				r.Label = s
			default:
				return nil, fmt.Errorf("unknown key %s[%d].%s: a replica has url and label", key, i, k)
			}
		}
		if r.URL == "" {
			return nil, fmt.Errorf("%s[%d] has no url", key, i)
		}
		out = append(out, r)
	}
	return out, nil
}

func parseSchedule(key string, v any) (Schedule, error) {
	t, ok := v.(map[string]any)
	if !ok {
		return Schedule{}, fmt.Errorf("%s must be a table", key)
	}
	s := Schedule{Calendar: map[string]string{}}
	for _, k := range sortedKeys(t) {
		str, ok := t[k].(string)
		if !ok {
			return Schedule{}, fmt.Errorf("%s.%s must be a string", key, k)
		}
		switch {
		case k == "user":
			s.User = str
		case k == "on-failure":
			s.OnFailure = str
		case slices.Contains(Jobs, k):
			if strings.TrimSpace(str) == "" {
				return Schedule{}, fmt.Errorf("%s.%s is empty: give a systemd OnCalendar expression such as \"*-*-* 01:30:00\"", key, k)
			}
			s.Calendar[k] = str
		default:
			return Schedule{}, fmt.Errorf("unknown key %s.%s: give user, on-failure or a job (%s)", key, k, strings.Join(Jobs, ", "))
		}
	}
	return s, nil
}

// values turns a TOML value into flag values.
func values(key string, v any) ([]string, error) {
	if list, ok := v.([]any); ok {
		out := make([]string, 0, len(list))
		for _, e := range list {
			s, err := scalar(key, e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := scalar(key, v)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

func scalar(key string, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	}
	return "", fmt.Errorf("%s: give a string, number, boolean or a list of them", key)
}

func stringList(v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ErrNotFound is returned by Find when no configuration file exists.
var ErrNotFound = errors.New("no configuration file")

// Find returns the first of paths that exists.
func Find(paths []string) (string, error) {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("configuration file %s: %w", p, err)
		}
	}
	return "", fmt.Errorf("%w (looked for %s): give --config FILE or set COURTBAK_CONFIG", ErrNotFound, strings.Join(paths, ", "))
}
