package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/icefill/icefill/spill"
)

// The manifests of deploy/k8s must agree with this binary: the exit codes
// the Job's podFailurePolicy maps, the shard count, the memory budget and
// the --config keys. (make test also validates them against the Kubernetes
// API schemas; make test-k8s runs them on a real cluster.)

type k8sEnv struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

type k8sEnvFrom struct {
	ConfigMapRef *struct {
		Name string `yaml:"name"`
	} `yaml:"configMapRef"`
}

type k8sJob struct {
	Kind string `yaml:"kind"`
	Spec struct {
		CompletionMode       string `yaml:"completionMode"`
		Completions          int    `yaml:"completions"`
		Parallelism          int    `yaml:"parallelism"`
		BackoffLimitPerIndex *int   `yaml:"backoffLimitPerIndex"`
		PodFailurePolicy     struct {
			Rules []struct {
				Action      string `yaml:"action"`
				OnExitCodes *struct {
					ContainerName string `yaml:"containerName"`
					Operator      string `yaml:"operator"`
					Values        []int  `yaml:"values"`
				} `yaml:"onExitCodes"`
			} `yaml:"rules"`
		} `yaml:"podFailurePolicy"`
		Template struct {
			Spec struct {
				RestartPolicy string `yaml:"restartPolicy"`
				Containers    []struct {
					Name      string       `yaml:"name"`
					Command   []string     `yaml:"command"`
					Args      []string     `yaml:"args"`
					Env       []k8sEnv     `yaml:"env"`
					EnvFrom   []k8sEnvFrom `yaml:"envFrom"`
					Resources struct {
						Requests map[string]string `yaml:"requests"`
						Limits   map[string]string `yaml:"limits"`
					} `yaml:"resources"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func readManifest(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "k8s", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// k8sBytes reads a Kubernetes quantity (4Gi, 512Mi) as bytes; only the
// binary suffixes the manifests use.
func k8sBytes(t *testing.T, s string) int64 {
	t.Helper()
	num := strings.TrimRight(s, "KMGTi")
	mult := map[string]int64{"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}[s[len(num):]]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 {
		t.Fatalf("quantity %q: want a number with Ki, Mi, Gi or Ti", s)
	}
	return n * mult
}

func TestK8sJobManifest(t *testing.T) {
	var job k8sJob
	readManifest(t, "job.yaml", &job)
	s := job.Spec
	if job.Kind != "Job" || s.CompletionMode != "Indexed" {
		t.Fatalf("job.yaml: kind %q, completionMode %q; want an Indexed Job", job.Kind, s.CompletionMode)
	}
	if s.Completions < 1 || s.Parallelism < 1 || s.Parallelism > s.Completions {
		t.Errorf("completions %d, parallelism %d", s.Completions, s.Parallelism)
	}
	if s.BackoffLimitPerIndex == nil || *s.BackoffLimitPerIndex < 1 {
		t.Errorf("backoffLimitPerIndex must allow a retry of a killed pod")
	}
	if s.Template.Spec.RestartPolicy != "Never" {
		t.Errorf("restartPolicy %q: podFailurePolicy needs Never", s.Template.Spec.RestartPolicy)
	}
	if len(s.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(s.Template.Spec.Containers))
	}
	ctr := s.Template.Spec.Containers[0]

	// Every exit code icefill documents has the action its meaning asks for.
	action := map[int]string{}
	for _, r := range s.PodFailurePolicy.Rules {
		if r.OnExitCodes == nil {
			continue
		}
		if r.OnExitCodes.ContainerName != ctr.Name || r.OnExitCodes.Operator != "In" {
			t.Errorf("rule %s: containerName %q operator %q; want %q, In", r.Action, r.OnExitCodes.ContainerName, r.OnExitCodes.Operator, ctr.Name)
		}
		for _, code := range r.OnExitCodes.Values {
			if _, dup := action[code]; !dup { // the first matching rule wins
				action[code] = r.Action
			}
		}
	}
	retry := func(a string) bool { return a == "" || a == "Count" || a == "Ignore" }
	for code, want := range map[int]func(string) bool{
		exitUsage:       func(a string) bool { return a == "FailIndex" },
		exitRefused:     func(a string) bool { return a == "FailIndex" },
		exitUnavailable: retry,
		exitInterrupted: retry,
		exitFailed:      retry, // failed partitions: the next run retries them
		137:             retry, // SIGKILL, e.g. out of memory: resume from the checkpoint
	} {
		if !want(action[code]) {
			t.Errorf("exit code %d maps to action %q", code, action[code])
		}
	}
	if !strings.Contains(exitCodesHelp, "2    bad flags") || !strings.Contains(exitCodesHelp, "3    catalog or storage unavailable; safe to retry") ||
		!strings.Contains(exitCodesHelp, "4    refused by a guard") {
		t.Errorf("the exit codes changed meaning; review job.yaml's podFailurePolicy:\n%s", exitCodesHelp)
	}

	env := map[string]string{}
	for _, e := range ctr.Env {
		env[e.Name] = e.Value
	}
	// Every index resolves a distinct shard of exactly completions shards.
	shardFlag := env["ICEFILL_SHARD"]
	if i := slices.Index(ctr.Args, "--shard"); i >= 0 && i+1 < len(ctr.Args) {
		shardFlag = ctr.Args[i+1]
	}
	if len(ctr.Args) == 0 || ctr.Args[0] != "run" {
		t.Errorf("args %q: want the run command", ctr.Args)
	}
	for _, idx := range []int{0, s.Completions - 1} {
		getenv := func(k string) string {
			if k == envJobCompletionIndex {
				return strconv.Itoa(idx)
			}
			return env[k]
		}
		i, n, err := resolveShard(shardFlag, getenv)
		if err != nil || i != idx || n != s.Completions {
			t.Errorf("index %d resolves to shard %d/%d (%v); want %d/%d: keep %s equal to completions", idx, i, n, err, idx, s.Completions, envShardCount)
		}
	}

	// The memory budget fits the container, and the pod is Guaranteed QoS.
	limit, request := ctr.Resources.Limits["memory"], ctr.Resources.Requests["memory"]
	if limit == "" || limit != request {
		t.Errorf("memory request %q, limit %q: want both, equal", request, limit)
	} else if budget := env["ICEFILL_MEMORY_LIMIT"]; budget == "" {
		t.Errorf("ICEFILL_MEMORY_LIMIT is not set")
	} else if b, err := spill.ParseSize(budget); err != nil || b < spill.MinLimit {
		t.Errorf("ICEFILL_MEMORY_LIMIT %q is not a budget --memory-limit takes (%v)", budget, err)
	} else if l := k8sBytes(t, limit); b > l*90/100 || b < l/2 {
		t.Errorf("ICEFILL_MEMORY_LIMIT %s vs container limit %s: keep it between 50%% and 90%% of the limit", budget, limit)
	}
	cpu, err := strconv.Atoi(ctr.Resources.Limits["cpu"])
	workers, err2 := strconv.Atoi(env["ICEFILL_WORKERS"])
	if err != nil || err2 != nil || workers < 1 || workers > cpu {
		t.Errorf("ICEFILL_WORKERS %q vs cpu limit %q: one worker per core", env["ICEFILL_WORKERS"], ctr.Resources.Limits["cpu"])
	}
	if !slices.ContainsFunc(ctr.EnvFrom, func(e k8sEnvFrom) bool { return e.ConfigMapRef != nil && e.ConfigMapRef.Name == "icefill-config" }) {
		t.Errorf("the container does not take its environment from the ConfigMap icefill-config")
	}
}

// Every ConfigMap key is the variable of a flag of icefill run, and the flags
// run requires are there (the pods have no other way to get them).
func TestK8sConfigMapKeysAreRunFlags(t *testing.T) {
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	readManifest(t, "configmap.yaml", &cm)
	vars := map[string]string{}
	for _, f := range runCommand().Flags {
		if ef, ok := f.(interface{ GetEnvVars() []string }); ok {
			for _, v := range ef.GetEnvVars() {
				vars[v] = f.Names()[0]
			}
		}
	}
	for k := range cm.Data {
		if _, ok := vars[k]; !ok {
			t.Errorf("configmap.yaml key %q is not the variable of a flag of icefill run", k)
		}
	}
	for _, k := range []string{"ICEFILL_SOURCE", "ICEFILL_FROM", "ICEFILL_TO", "ICEFILL_BRANCH", "ICEFILL_CATALOG_URI", "ICEFILL_TABLE"} {
		if cm.Data[k] == "" {
			t.Errorf("configmap.yaml lacks %s", k)
		}
	}
}
