package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/internal/objstore"
)

// Flag names of the catalog flags, shared by catalogFlags and catalogConfig.
const (
	flagConfig              = "config"
	flagCatalogURI          = "catalog-uri"
	flagCatalogName         = "catalog-name"
	flagCatalogDB           = "catalog-db"
	flagWarehouse           = "warehouse"
	flagTable               = "table"
	flagCatalogToken        = "catalog-token"
	flagCatalogCredential   = "catalog-credential"
	flagCatalogOAuthURI     = "catalog-oauth-uri"
	flagCatalogScope        = "catalog-scope"
	flagCatalogCAFile       = "catalog-ca-file"
	flagCatalogInsecure     = "catalog-insecure-skip-verify"
	flagCatalogSigV4        = "catalog-sigv4"
	flagCatalogSigV4Region  = "catalog-sigv4-region"
	flagCatalogSigV4Service = "catalog-sigv4-service"
	flagCatalogPrefix       = "catalog-prefix"
	flagCatalogHeader       = "catalog-header"
	flagS3Endpoint          = "s3-endpoint"
	flagS3Region            = "s3-region"
	flagS3PathStyle         = "s3-path-style"

	defaultConfigFile = "icefill.yaml"
)

// envName is the ICEFILL_* variable of a flag: --catalog-uri reads
// ICEFILL_CATALOG_URI.
func envName(flag string) string {
	return "ICEFILL_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func env(flag string) []string { return []string{envName(flag)} }

const (
	catCatalog = "Catalog"
	catStorage = "Object storage"
)

// configFlag is --config: a YAML file of default flag values.
func configFlag() cli.Flag {
	return &cli.StringFlag{
		Name:      flagConfig,
		Value:     defaultConfigFile,
		TakesFile: true,
		EnvVars:   env(flagConfig),
		Usage: "YAML `FILE` of flag values, keyed by flag name (e.g. \"catalog-uri: https://…\"); " +
			"precedence: flag, then ICEFILL_* variable, then this file; icefill.yaml is skipped when absent",
	}
}

// catalogFlags are the flags of every command that opens the catalog,
// including --config. Each flag NAME also reads ICEFILL_NAME (upper case,
// '-' as '_') and the key NAME of the --config file.
func catalogFlags() []cli.Flag {
	d := catalog.DefaultConfig()
	str := func(name, usage, value, category string) *cli.StringFlag {
		return &cli.StringFlag{Name: name, Usage: usage, Value: value, EnvVars: env(name), Category: category}
	}
	return []cli.Flag{
		configFlag(),
		str(flagCatalogURI, "the Iceberg catalog: empty for the embedded SQLite catalog at --catalog-db, "+
			"http(s)://HOST[/PATH] for a REST catalog, sqlite://PATH or a path for another SQLite file", "", catCatalog),
		str(flagCatalogName, "catalog name; other engines opening the same SQLite file must use the same", d.Name, catCatalog),
		str(flagCatalogDB, "SQLite file of the embedded catalog (created if missing)", d.SQLitePath, catCatalog),
		&cli.StringFlag{Name: flagWarehouse, EnvVars: env(flagWarehouse), Category: catCatalog,
			Usage:       "where tables live: a local path, file:// or s3://bucket/prefix; for a REST catalog, its warehouse name or location",
			DefaultText: d.Warehouse + " for the embedded catalog; the server's choice for REST"},
		str(flagTable, "the table, namespace.table", d.Table, catCatalog),
		secretFlag(&cli.StringFlag{Name: flagCatalogToken, EnvVars: env(flagCatalogToken), Category: catCatalog,
			Usage: "REST: bearer token (prefer the environment variable: flags show in process lists)"}),
		secretFlag(&cli.StringFlag{Name: flagCatalogCredential, EnvVars: env(flagCatalogCredential), Category: catCatalog,
			Usage: "REST: OAuth2 client credentials CLIENT_ID:SECRET (prefer the environment variable)"}),
		str(flagCatalogOAuthURI, "REST: OAuth2 token endpoint (default: the catalog's /v1/oauth/tokens)", "", catCatalog),
		str(flagCatalogScope, "REST: OAuth2 scope (default: catalog)", "", catCatalog),
		&cli.StringFlag{Name: flagCatalogCAFile, EnvVars: env(flagCatalogCAFile), Category: catCatalog, TakesFile: true,
			Usage: "REST: PEM file of extra CA certificates to trust"},
		&cli.BoolFlag{Name: flagCatalogInsecure, EnvVars: env(flagCatalogInsecure), Category: catCatalog,
			Usage: "REST: do not verify the server's TLS certificate (unsafe; for tests)"},
		&cli.BoolFlag{Name: flagCatalogSigV4, EnvVars: env(flagCatalogSigV4), Category: catCatalog,
			Usage: "REST: sign requests with AWS SigV4 (AWS credential chain), e.g. for AWS Glue or S3 Tables"},
		str(flagCatalogSigV4Region, "REST: SigV4 signing region (default: the AWS SDK's region)", "", catCatalog),
		str(flagCatalogSigV4Service, "REST: SigV4 signing service, e.g. glue or s3tables (default: execute-api)", "", catCatalog),
		str(flagCatalogPrefix, "REST: path prefix after /v1 (normally handed out by the server)", "", catCatalog),
		&cli.StringSliceFlag{Name: flagCatalogHeader, EnvVars: env(flagCatalogHeader), Category: catCatalog,
			Usage: "REST: extra HTTP header NAME=VALUE; repeat for more"},
		str(flagS3Endpoint, "S3-compatible endpoint for the warehouse (and source), e.g. http://127.0.0.1:9000; implies path-style", "", catStorage),
		str(flagS3Region, "S3 region (default: the AWS SDK's)", "", catStorage),
		&cli.BoolFlag{Name: flagS3PathStyle, EnvVars: env(flagS3PathStyle), Category: catStorage,
			Usage: "S3 path-style addressing even without --s3-endpoint"},
	}
}

// secretStringFlag is a string flag whose value never appears in help or
// generated docs, even when it came from the environment.
type secretStringFlag struct{ *cli.StringFlag }

func secretFlag(f *cli.StringFlag) cli.Flag        { return &secretStringFlag{f} }
func (f *secretStringFlag) GetDefaultText() string { return "" }
func (f *secretStringFlag) GetValue() string       { return "" }
func (f *secretStringFlag) String() string         { return cli.FlagStringer(f) }

// catalogConfig builds the catalog configuration from the flags (which
// already merged ICEFILL_* variables and the --config file). S3 options start
// from objstore.S3OptionsFromEnv (keys and session token come only from
// ICEFILL_S3_* variables) and the flags override them.
func catalogConfig(c *cli.Context) catalog.Config {
	cfg := catalog.DefaultConfig()
	set := func(dst *string, name string) {
		if v := strings.TrimSpace(c.String(name)); v != "" {
			*dst = v
		}
	}
	set(&cfg.URI, flagCatalogURI)
	set(&cfg.Name, flagCatalogName)
	set(&cfg.SQLitePath, flagCatalogDB)
	set(&cfg.Warehouse, flagWarehouse)
	set(&cfg.Table, flagTable)
	set(&cfg.Token, flagCatalogToken)
	set(&cfg.Credential, flagCatalogCredential)
	set(&cfg.OAuthServerURI, flagCatalogOAuthURI)
	set(&cfg.Scope, flagCatalogScope)
	set(&cfg.CAFile, flagCatalogCAFile)
	cfg.InsecureSkipVerify = c.Bool(flagCatalogInsecure)
	cfg.SigV4 = c.Bool(flagCatalogSigV4)
	set(&cfg.SigV4Region, flagCatalogSigV4Region)
	set(&cfg.SigV4Service, flagCatalogSigV4Service)
	set(&cfg.Prefix, flagCatalogPrefix)
	for _, h := range c.StringSlice(flagCatalogHeader) {
		name, value, ok := strings.Cut(h, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			slog.Warn("ignoring --catalog-header without NAME=VALUE", "header_name", name)
			continue
		}
		if cfg.Headers == nil {
			cfg.Headers = map[string]string{}
		}
		cfg.Headers[name] = strings.TrimSpace(value)
	}

	cfg.S3 = objstore.S3OptionsFromEnv()
	set(&cfg.S3.Endpoint, flagS3Endpoint)
	set(&cfg.S3.Region, flagS3Region)
	if c.IsSet(flagS3PathStyle) {
		cfg.S3.PathStyle = c.Bool(flagS3PathStyle)
	}
	return cfg
}

// withConfigFile returns flags with --config added (when missing) and the
// Before hook that applies the config file to them. Chain the hook first in
// a command's Before.
func withConfigFile(flags []cli.Flag) ([]cli.Flag, cli.BeforeFunc) {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == flagConfig {
				return flags, configFileBefore(flags)
			}
		}
	}
	flags = append(append([]cli.Flag(nil), flags...), configFlag())
	return flags, configFileBefore(flags)
}

// configFileBefore returns a Before hook that reads the --config YAML file
// (a mapping of flag names to values; lists for repeatable flags) and gives
// every flag of flags that was set neither on the command line nor by its
// environment variable the file's value. The default icefill.yaml is
// skipped when absent; an explicit --config must exist.
//
// This is what urfave/cli's altsrc.InitInputSourceWithContext with
// NewYamlSourceFromFlagFunc("config") does, without altsrc: altsrc pulls in
// a TOML module (github.com/BurntSushi/toml v1.5.0) that is not in this
// module's go.mod/go.sum, and it cannot skip an absent default file.
// Limitation shared with altsrc: urfave/cli checks Required flags before
// Before hooks run, so a required flag cannot come from the file.
func configFileBefore(flags []cli.Flag) cli.BeforeFunc {
	return func(c *cli.Context) error {
		path := strings.TrimSpace(c.String(flagConfig))
		if path == "" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && !c.IsSet(flagConfig) {
				return nil // the default file is optional
			}
			return errkind.Usagef("--config: %v", err)
		}
		values, err := parseConfigYAML(data)
		if err != nil {
			return errkind.Usagef("--config %s: %v", path, err)
		}
		return applyConfigValues(c, flags, values, path)
	}
}

// parseConfigYAML reads a YAML mapping of flag name to a scalar or a list of
// scalars, keeping each scalar's text as written (dates stay YYYY-MM-DD).
func parseConfigYAML(data []byte) (map[string][]string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return out, nil // empty file
	}
	root := deref(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return out, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("want a mapping of flag names to values, e.g. %s: analytics.clv_daily", flagTable)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := deref(root.Content[i]), deref(root.Content[i+1])
		name := strings.TrimPrefix(strings.TrimSpace(key.Value), "--")
		switch val.Kind {
		case yaml.ScalarNode:
			if val.Tag == "!!null" {
				continue
			}
			out[name] = []string{val.Value}
		case yaml.SequenceNode:
			var list []string
			for _, item := range val.Content {
				item = deref(item)
				if item.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("line %d: %s: list items must be plain values", item.Line, name)
				}
				list = append(list, item.Value)
			}
			out[name] = list
		default:
			return nil, fmt.Errorf("line %d: %s: want a value or a list of values, not a mapping", val.Line, name)
		}
	}
	return out, nil
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// applyConfigValues sets each flag from the file unless the command line or
// the environment set it.
func applyConfigValues(c *cli.Context, flags []cli.Flag, values map[string][]string, path string) error {
	used := map[string]bool{}
	for _, f := range flags {
		names := f.Names()
		if len(names) == 0 || names[0] == flagConfig {
			continue
		}
		var vals []string
		found := false
		for _, n := range names {
			if v, ok := values[n]; ok {
				vals, found = v, true
				used[n] = true
				break
			}
		}
		if found {
			if rf, ok := f.(cli.RequiredFlag); ok && rf.IsRequired() {
				// urfave/cli checks required flags before the file is read.
				slog.Warn("config file key names a required flag, which only the command line or its ICEFILL_* variable can set; ignored",
					"file", path, "key", names[0])
				continue
			}
		}
		if !found || c.IsSet(names[0]) || envSet(f) {
			continue
		}
		for _, v := range vals {
			if err := c.Set(names[0], v); err != nil {
				return errkind.Usagef("--config %s: %s: %v", path, names[0], err)
			}
		}
	}
	// Keys of other commands' flags are fine (one file serves all
	// commands); anything else is a typo or a global flag (--log-level…),
	// which the file cannot set.
	known := commandFlagNames(c)
	for k := range values {
		if !used[k] && !known[k] {
			slog.Warn("config file key is not a flag of any command; ignored", "file", path, "key", k)
		}
	}
	return nil
}

// envSet reports whether one of the flag's environment variables is set.
func envSet(f cli.Flag) bool {
	ef, ok := f.(interface{ GetEnvVars() []string })
	if !ok {
		return false
	}
	for _, e := range ef.GetEnvVars() {
		if _, ok := os.LookupEnv(strings.TrimSpace(e)); ok {
			return true
		}
	}
	return false
}

// commandFlagNames lists every flag name of the app's commands.
func commandFlagNames(c *cli.Context) map[string]bool {
	known := map[string]bool{}
	addFlags := func(fs []cli.Flag) {
		for _, f := range fs {
			for _, n := range f.Names() {
				known[n] = true
			}
		}
	}
	var addCmds func([]*cli.Command)
	addCmds = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			addFlags(cmd.Flags)
			addCmds(cmd.Subcommands)
		}
	}
	if c.App != nil {
		addCmds(c.App.Commands)
	}
	if c.Command != nil {
		addFlags(c.Command.Flags)
	}
	return known
}
