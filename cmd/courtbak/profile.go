package main

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/courtbak/courtbak/cmd/courtbak/config"
)

// Flags that select the configuration, and so cannot be set from it.
var notInProfile = map[string]bool{"profile": true, "config": true, "help": true}

// noProfile are the commands that never read the configuration, so that
// a COURTBAK_PROFILE in the environment cannot break them: shell
// completion (completion, and cobra's __complete that the scripts call),
// help, version and gen-man.
var noProfile = map[string]bool{"completion": true, cobra.ShellCompRequestCmd: true, cobra.ShellCompNoDescRequestCmd: true,
	"help": true, "version": true, "gen-man": true}

// configSchema lists the keys a profile may set: every global flag, and
// for each command directly under root its own flags. A flag added to a
// command is a valid key at once.
func configSchema(root *cobra.Command) config.Schema {
	s := config.Schema{Global: map[string]bool{}, Commands: map[string]map[string]bool{}}
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
		if !notInProfile[f.Name] {
			s.Global[f.Name] = true
		}
	})
	for _, c := range root.Commands() {
		if c.Runnable() && !c.Hidden {
			keys := map[string]bool{}
			c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
				if !notInProfile[f.Name] {
					keys[f.Name] = true
				}
			})
			s.Commands[c.Name()] = keys
		}
	}
	return s
}

// configPath is --config, else COURTBAK_CONFIG (the flag's default), else
// the first default path that exists.
func (g *globals) configPath() (string, error) {
	if g.configFile != "" {
		return g.configFile, nil
	}
	return config.Find(config.DefaultPaths())
}

// loadConfig reads the configuration file.
func (g *globals) loadConfig(root *cobra.Command) (*config.File, error) {
	path, err := g.configPath()
	if err != nil {
		return nil, err
	}
	return config.Load(path, configSchema(root))
}

// applyProfile loads --profile and sets every flag of c that the command
// line left unset to the profile's value: the command's own table first,
// then the global options. The command line beats the profile, and the
// profile beats the environment (COURTBAK_REPOSITORY etc.), because naming
// a profile is the more deliberate choice.
func (g *globals) applyProfile(root, c *cobra.Command) error {
	if g.profileName == "" || noProfile[c.Name()] || (c.HasParent() && noProfile[c.Parent().Name()]) {
		return nil
	}
	file, err := g.loadConfig(root)
	if err != nil {
		return err
	}
	p, err := file.Profile(g.profileName)
	if err != nil {
		return err
	}
	g.profile = p
	if c.Parent() == root {
		if err := setFlags(c, p.Commands[c.Name()], file.Path, p.Name+"."+c.Name()); err != nil {
			return err
		}
	}
	return setFlags(c, p.Options, file.Path, p.Name)
}

// setFlags sets each flag in opts that is not set yet. A repeatable flag
// takes all values; the first Set replaces its default.
func setFlags(c *cobra.Command, opts config.Options, path, where string) error {
	for _, name := range sortedNames(opts) {
		f := c.Flags().Lookup(name)
		if f == nil || f.Changed {
			continue // given on the command line
		}
		for _, v := range opts[name] {
			if err := c.Flags().Set(name, v); err != nil {
				return fmt.Errorf("configuration file %s: profile.%s.%s = %q: %v", path, where, name, v, err)
			}
		}
	}
	return nil
}

func sortedNames(opts config.Options) []string {
	names := make([]string, 0, len(opts))
	for n := range opts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// labelled names a location with its label from the profile, if any:
// "Provincial center (s3:https://…)".
func (g *globals) labelled(url, location string) string {
	if g.profile == nil {
		return location
	}
	if l := g.profile.LabelOf(url); l != "" {
		return l + " (" + location + ")"
	}
	return location
}
