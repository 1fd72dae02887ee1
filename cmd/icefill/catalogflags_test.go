package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/catalog"
)

// runCatalogCmd runs a one-command app with the catalog flags and returns
// the Config catalogConfig built, the output, and the error.
func runCatalogCmd(t *testing.T, args ...string) (catalog.Config, string, error) {
	t.Helper()
	var got catalog.Config
	flags, before := withConfigFile(catalogFlags())
	var out bytes.Buffer
	app := &cli.App{
		Name:      "icefill",
		Writer:    &out,
		ErrWriter: &out,
		Commands: []*cli.Command{{
			Name:   "status",
			Flags:  flags,
			Before: before,
			Action: func(c *cli.Context) error {
				got = catalogConfig(c)
				return nil
			},
		}, {
			Name:  "other",
			Flags: []cli.Flag{&cli.StringFlag{Name: "source"}},
		}},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err := app.RunContext(context.Background(), append([]string{"icefill", "status"}, args...))
	return got, out.String(), err
}

// clearEnv unsets every ICEFILL_* variable for the test.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ICEFILL_") || strings.HasPrefix(k, "AWS_ENDPOINT_URL") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func TestCatalogConfigPrecedence(t *testing.T) {
	const yamlText = `
catalog-uri: https://from-yaml.example/api
table: yaml_ns.yaml_table
warehouse: s3://yaml-bucket/wh
catalog-sigv4: true
catalog-header:
  - X-A=1
  - X-B=2
s3-region: yaml-region
source: ./events   # another command's flag: fine
`
	tests := []struct {
		name    string
		yaml    string // written to icefill.yaml in the working directory
		env     map[string]string
		args    []string
		check   func(t *testing.T, cfg catalog.Config)
		wantErr string
	}{
		{
			name: "defaults without any file",
			check: func(t *testing.T, cfg catalog.Config) {
				if !reflect.DeepEqual(cfg, catalog.DefaultConfig()) {
					t.Errorf("cfg = %+v, want the defaults", cfg)
				}
			},
		},
		{
			name: "yaml fills unset flags",
			yaml: yamlText,
			check: func(t *testing.T, cfg catalog.Config) {
				if cfg.URI != "https://from-yaml.example/api" || cfg.Table != "yaml_ns.yaml_table" ||
					cfg.Warehouse != "s3://yaml-bucket/wh" || !cfg.SigV4 || cfg.S3.Region != "yaml-region" {
					t.Errorf("cfg = %+v", cfg)
				}
				if !reflect.DeepEqual(cfg.Headers, map[string]string{"X-A": "1", "X-B": "2"}) {
					t.Errorf("headers = %v", cfg.Headers)
				}
				if cfg.Name != "icefill" {
					t.Errorf("name = %q", cfg.Name)
				}
			},
		},
		{
			name: "env beats yaml",
			yaml: yamlText,
			env:  map[string]string{"ICEFILL_CATALOG_URI": "https://from-env.example", "ICEFILL_TABLE": "env.t", "ICEFILL_CATALOG_SIGV4": "false"},
			check: func(t *testing.T, cfg catalog.Config) {
				if cfg.URI != "https://from-env.example" || cfg.Table != "env.t" || cfg.SigV4 {
					t.Errorf("cfg = %+v", cfg)
				}
				if cfg.Warehouse != "s3://yaml-bucket/wh" {
					t.Errorf("warehouse = %q, want the yaml value", cfg.Warehouse)
				}
			},
		},
		{
			name: "flag beats env and yaml",
			yaml: yamlText,
			env:  map[string]string{"ICEFILL_CATALOG_URI": "https://from-env.example"},
			args: []string{"--catalog-uri", "https://from-flag.example", "--catalog-sigv4=false", "--catalog-db", "x/cat.db"},
			check: func(t *testing.T, cfg catalog.Config) {
				if cfg.URI != "https://from-flag.example" || cfg.SigV4 || cfg.SQLitePath != "x/cat.db" {
					t.Errorf("cfg = %+v", cfg)
				}
			},
		},
		{
			name: "S3: flags override ICEFILL_S3_* variables, keys come from the environment",
			env: map[string]string{"ICEFILL_S3_ENDPOINT": "http://env:9000", "ICEFILL_S3_ACCESS_KEY_ID": "AK",
				"ICEFILL_S3_SECRET_ACCESS_KEY": "SK", "ICEFILL_S3_SESSION_TOKEN": "ST", "ICEFILL_S3_PATH_STYLE": "true"},
			args: []string{"--s3-endpoint", "http://flag:9000", "--s3-region", "r1", "--s3-path-style=false"},
			check: func(t *testing.T, cfg catalog.Config) {
				s := cfg.S3
				if s.Endpoint != "http://flag:9000" || s.Region != "r1" || s.PathStyle || s.AccessKeyID != "AK" ||
					s.SecretAccessKey != "SK" || s.SessionToken != "ST" {
					t.Errorf("S3 = %+v", s)
				}
			},
		},
		{
			name: "REST auth and TLS flags",
			args: []string{"--catalog-token", "t0k", "--catalog-credential", "id:sec", "--catalog-oauth-uri", "https://idp/token",
				"--catalog-scope", "s", "--catalog-ca-file", "ca.pem", "--catalog-insecure-skip-verify",
				"--catalog-sigv4-region", "eu-west-1", "--catalog-sigv4-service", "glue", "--catalog-prefix", "p", "--catalog-name", "n"},
			check: func(t *testing.T, cfg catalog.Config) {
				want := catalog.DefaultConfig()
				want.Token, want.Credential, want.OAuthServerURI, want.Scope = "t0k", "id:sec", "https://idp/token", "s"
				want.CAFile, want.InsecureSkipVerify = "ca.pem", true
				want.SigV4Region, want.SigV4Service, want.Prefix, want.Name = "eu-west-1", "glue", "p", "n"
				if !reflect.DeepEqual(cfg, want) {
					t.Errorf("cfg = %+v\nwant  %+v", cfg, want)
				}
			},
		},
		{
			name: "env names",
			env: map[string]string{"ICEFILL_CATALOG_TOKEN": "env-token", "ICEFILL_CATALOG_CREDENTIAL": "a:b", "ICEFILL_WAREHOUSE": "/wh",
				"ICEFILL_CATALOG_DB": "/db", "ICEFILL_CATALOG_NAME": "nm", "ICEFILL_CATALOG_PREFIX": "px", "ICEFILL_CATALOG_HEADER": "K=V"},
			check: func(t *testing.T, cfg catalog.Config) {
				if cfg.Token != "env-token" || cfg.Credential != "a:b" || cfg.Warehouse != "/wh" || cfg.SQLitePath != "/db" ||
					cfg.Name != "nm" || cfg.Prefix != "px" || cfg.Headers["K"] != "V" {
					t.Errorf("cfg = %+v", cfg)
				}
			},
		},
		{
			name:    "explicit --config that does not exist",
			args:    []string{"--config", "missing.yaml"},
			wantErr: "missing.yaml",
		},
		{
			name:    "malformed yaml",
			yaml:    "catalog-uri: [unclosed",
			wantErr: "--config icefill.yaml",
		},
		{
			name:    "nested mapping",
			yaml:    "catalog:\n  uri: x\n",
			wantErr: "not a mapping",
		},
		{
			name: "empty yaml",
			yaml: "# nothing\n",
			check: func(t *testing.T, cfg catalog.Config) {
				if !reflect.DeepEqual(cfg, catalog.DefaultConfig()) {
					t.Errorf("cfg = %+v", cfg)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			dir := t.TempDir()
			t.Chdir(dir)
			if tc.yaml != "" {
				if err := os.WriteFile(filepath.Join(dir, "icefill.yaml"), []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, out, err := runCatalogCmd(t, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q (output %s)", err, tc.wantErr, out)
				}
				if exitCode(err) != exitUsage {
					t.Errorf("exit code %d, want %d", exitCode(err), exitUsage)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v (output %s)", err, out)
			}
			tc.check(t, cfg)
		})
	}
}

func TestCatalogFlagsHelpHidesSecrets(t *testing.T) {
	clearEnv(t)
	t.Chdir(t.TempDir())
	os.WriteFile("icefill.yaml", []byte("catalog-credential: yaml-client:yaml-secret-42\n"), 0o600)
	t.Setenv("ICEFILL_CATALOG_TOKEN", "env-secret-token-17")
	for _, args := range [][]string{{"--help"}, {"-h"}} {
		_, out, err := runCatalogCmd(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"env-secret-token-17", "yaml-secret-42"} {
			if strings.Contains(out, s) {
				t.Errorf("help shows a secret %q:\n%s", s, out)
			}
		}
		for _, want := range []string{"--catalog-token", "$ICEFILL_CATALOG_TOKEN", "--catalog-credential", "--s3-path-style",
			"$ICEFILL_S3_ENDPOINT", "--config", `(default: "analytics.clv_daily")`} {
			if !strings.Contains(out, want) {
				t.Errorf("help lacks %q:\n%s", want, out)
			}
		}
	}
}

func TestCatalogFlagEnvNames(t *testing.T) {
	want := map[string]string{
		"config": "ICEFILL_CONFIG", "catalog-uri": "ICEFILL_CATALOG_URI", "catalog-name": "ICEFILL_CATALOG_NAME",
		"catalog-db": "ICEFILL_CATALOG_DB", "warehouse": "ICEFILL_WAREHOUSE", "table": "ICEFILL_TABLE",
		"catalog-token": "ICEFILL_CATALOG_TOKEN", "catalog-credential": "ICEFILL_CATALOG_CREDENTIAL",
		"catalog-oauth-uri": "ICEFILL_CATALOG_OAUTH_URI", "catalog-scope": "ICEFILL_CATALOG_SCOPE",
		"catalog-ca-file": "ICEFILL_CATALOG_CA_FILE", "catalog-insecure-skip-verify": "ICEFILL_CATALOG_INSECURE_SKIP_VERIFY",
		"catalog-sigv4": "ICEFILL_CATALOG_SIGV4", "catalog-sigv4-region": "ICEFILL_CATALOG_SIGV4_REGION",
		"catalog-sigv4-service": "ICEFILL_CATALOG_SIGV4_SERVICE", "catalog-prefix": "ICEFILL_CATALOG_PREFIX",
		"catalog-header": "ICEFILL_CATALOG_HEADER", "s3-endpoint": "ICEFILL_S3_ENDPOINT", "s3-region": "ICEFILL_S3_REGION",
		"s3-path-style": "ICEFILL_S3_PATH_STYLE",
	}
	seen := map[string]bool{}
	for _, f := range catalogFlags() {
		name := f.Names()[0]
		seen[name] = true
		ev := f.(interface{ GetEnvVars() []string }).GetEnvVars()
		if len(ev) != 1 || ev[0] != want[name] {
			t.Errorf("--%s reads %v, want %s", name, ev, want[name])
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("flag --%s missing", name)
		}
	}
}
