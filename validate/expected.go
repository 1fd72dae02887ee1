package validate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Direction is the declared sign of an intended difference.
type Direction string

// Directions: up (candidate above base), down (below), any (either way).
const (
	Up   Direction = "up"
	Down Direction = "down"
	Any  Direction = "any"
)

// Expectation declares an intended difference (one entry of the expected
// file). A group of (Metric, Dimension) whose relative difference has the
// declared direction and lies within Bound is reported as expected rather
// than failed.
type Expectation struct {
	Metric string `yaml:"metric" json:"metric"`
	// Dimension is one of the metric's dimensions, or "" / "*" for all of them.
	Dimension string `yaml:"dimension" json:"dimension,omitempty"`
	// Groups restricts the entry to these groups (channels, days, columns…).
	Groups    []string  `yaml:"groups" json:"groups,omitempty"`
	Direction Direction `yaml:"direction" json:"direction"`
	// Bound is the largest accepted |relative difference| (0.15 = 15 %);
	// YAML .inf accepts any size. Required for every metric except
	// partitions and columns, where it does not apply.
	Bound *float64 `yaml:"bound" json:"-"`
	// RelativeTo divides the difference by the base value of another
	// additive metric of the same group instead of the metric's own base:
	// (cand − base) / base[RelativeTo]. Meant for metrics whose base is 0
	// (refund_cents on the legacy table): "refunds up by at most 30 % of
	// the base's gross revenue".
	RelativeTo string `yaml:"relative_to" json:"relative_to,omitempty"`
	Reason     string `yaml:"reason" json:"reason"`

	line int
}

// Rule overrides the group rule of a metric and dimension: the metric passes
// when at least GroupShare of the dimension's groups differ by less than
// Tolerance. Metric or Dimension "" or "*" match all.
type Rule struct {
	Metric     string   `yaml:"metric" json:"metric,omitempty"`
	Dimension  string   `yaml:"dimension" json:"dimension,omitempty"`
	GroupShare *float64 `yaml:"group_share" json:"group_share,omitempty"`
	Tolerance  *float64 `yaml:"tolerance" json:"tolerance,omitempty"`

	line int
}

// Expected is a parsed expected-differences file.
type Expected struct {
	Path        string        `json:"path,omitempty"`
	Differences []Expectation `json:"expected"`
	Rules       []Rule        `json:"rules,omitempty"`
}

// Default group rule: a metric passes when at least 95 % of a dimension's
// groups differ by less than 0.5 %.
const (
	DefaultGroupShare = 0.95
	DefaultTolerance  = 0.005
)

// LoadExpected reads an expected-differences YAML file:
//
//	expected:
//	  - {metric: orders, dimension: "*", direction: down, bound: 0.10, reason: "…"}
//	rules:
//	  - {metric: "*", dimension: country, group_share: 0.9, tolerance: 0.01}
//
// A bare list is read as the expected entries alone.
func LoadExpected(path string) (*Expected, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	e, err := ParseExpected(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	e.Path = path
	return e, nil
}

var (
	expectationKeys = []string{"metric", "dimension", "groups", "direction", "bound", "relative_to", "reason"}
	ruleKeys        = []string{"metric", "dimension", "group_share", "tolerance"}
)

// ParseExpected parses the YAML text of an expected-differences file.
func ParseExpected(data []byte) (*Expected, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &Expected{}, nil
		}
		return nil, err
	}
	e := &Expected{}
	if len(doc.Content) == 0 {
		return e, nil
	}
	root := doc.Content[0]
	var entries, rules *yaml.Node
	switch root.Kind {
	case yaml.SequenceNode:
		entries = root
	case yaml.MappingNode:
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			switch k.Value {
			case "expected":
				entries = v
			case "rules":
				rules = v
			default:
				return nil, fmt.Errorf("line %d: unknown key %q (want expected and rules)", k.Line, k.Value)
			}
		}
	case yaml.ScalarNode:
		if root.Tag == "!!null" {
			return e, nil
		}
		fallthrough
	default:
		return nil, fmt.Errorf("line %d: want a mapping with expected: and rules: lists", root.Line)
	}
	if entries != nil && !isNull(entries) {
		if entries.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("line %d: expected: want a list of entries", entries.Line)
		}
		for _, n := range entries.Content {
			var x Expectation
			if err := decodeStrict(n, expectationKeys, &x); err != nil {
				return nil, err
			}
			x.line = n.Line
			if err := x.validate(); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			e.Differences = append(e.Differences, x)
		}
	}
	if rules != nil && !isNull(rules) {
		if rules.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("line %d: rules: want a list", rules.Line)
		}
		for _, n := range rules.Content {
			var r Rule
			if err := decodeStrict(n, ruleKeys, &r); err != nil {
				return nil, err
			}
			r.line = n.Line
			if err := r.validate(); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			e.Rules = append(e.Rules, r)
		}
	}
	return e, nil
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// decodeStrict decodes a mapping node into v after checking its keys.
func decodeStrict(n *yaml.Node, keys []string, v any) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of %s", n.Line, strings.Join(keys, ", "))
	}
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i]; !slices.Contains(keys, k.Value) {
			return fmt.Errorf("line %d: unknown key %q (want %s)", k.Line, k.Value, strings.Join(keys, ", "))
		}
	}
	if err := n.Decode(v); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

func (x *Expectation) validate() error {
	if x.Metric == "" {
		return errors.New("metric is required")
	}
	dims, ok := metricDimensions[x.Metric]
	if !ok {
		if slices.Contains(invariantNames, x.Metric) {
			return fmt.Errorf("metric %q is an invariant of the candidate: invariants always fail and cannot be declared", x.Metric)
		}
		return fmt.Errorf("unknown metric %q (want one of %s)", x.Metric, strings.Join(Metrics(), ", "))
	}
	if x.Dimension == "*" {
		x.Dimension = ""
	}
	if x.Dimension != "" && !slices.Contains(dims, x.Dimension) {
		return fmt.Errorf("metric %s has no dimension %q (want one of %s, or * for all)", x.Metric, x.Dimension, strings.Join(dims, ", "))
	}
	if x.Dimension == "" && len(dims) == 1 {
		x.Dimension = dims[0]
	}
	if len(x.Groups) > 0 && x.Dimension == "" {
		return fmt.Errorf("groups need a single dimension: metric %s has %s", x.Metric, strings.Join(dims, ", "))
	}
	switch x.Direction {
	case Up, Down, Any:
	case "":
		return errors.New("direction is required (up, down or any)")
	default:
		return fmt.Errorf("direction %q: want up, down or any", x.Direction)
	}
	noBound := x.Metric == MetricPartitions || x.Metric == MetricColumns
	switch {
	case noBound && x.Bound != nil:
		return fmt.Errorf("bound does not apply to %s (a declared %s difference is accepted in its direction)", x.Metric, x.Metric)
	case !noBound && x.Bound == nil:
		return errors.New("bound is required (the largest accepted relative difference, e.g. 0.15 for 15 %; .inf for any)")
	case x.Bound != nil && (math.IsNaN(*x.Bound) || *x.Bound < 0):
		return fmt.Errorf("bound %v: want a number >= 0", *x.Bound)
	}
	if x.RelativeTo != "" {
		if !slices.Contains(additiveMetrics, x.Metric) || !slices.Contains(additiveMetrics, x.RelativeTo) {
			return fmt.Errorf("relative_to applies between the additive metrics %s", strings.Join(additiveMetrics, ", "))
		}
	}
	if strings.TrimSpace(x.Reason) == "" {
		return errors.New("reason is required: say why the difference is intended")
	}
	return nil
}

func (r *Rule) validate() error {
	if r.Metric == "*" {
		r.Metric = ""
	}
	if r.Dimension == "*" {
		r.Dimension = ""
	}
	if r.Metric != "" {
		dims, ok := metricDimensions[r.Metric]
		if !ok || r.Metric == MetricPartitions || r.Metric == MetricColumns {
			return fmt.Errorf("rules apply to %s; not to %q", strings.Join(ruleMetrics(), ", "), r.Metric)
		}
		if r.Dimension != "" && !slices.Contains(dims, r.Dimension) {
			return fmt.Errorf("metric %s has no dimension %q", r.Metric, r.Dimension)
		}
	} else if r.Dimension != "" && !slices.Contains(allDimensions, r.Dimension) {
		return fmt.Errorf("unknown dimension %q (want one of %s)", r.Dimension, strings.Join(allDimensions, ", "))
	}
	if r.GroupShare == nil && r.Tolerance == nil {
		return errors.New("a rule sets group_share, tolerance or both")
	}
	if s := r.GroupShare; s != nil && (math.IsNaN(*s) || *s < 0 || *s > 1) {
		return fmt.Errorf("group_share %v: want a share between 0 and 1", *s)
	}
	if t := r.Tolerance; t != nil && (math.IsNaN(*t) || *t < 0) {
		return fmt.Errorf("tolerance %v: want a number >= 0", *t)
	}
	return nil
}

// find returns the most specific declaration of (metric, dimension, group):
// an exact dimension beats "all dimensions", and an entry naming the group
// beats one without groups; among equals the first in the file wins.
func (e *Expected) find(metric, dim, group string) *Expectation {
	if e == nil {
		return nil
	}
	var best *Expectation
	bestScore := -1
	for i := range e.Differences {
		x := &e.Differences[i]
		if x.Metric != metric || (x.Dimension != "" && x.Dimension != dim) {
			continue
		}
		score := 0
		if x.Dimension != "" {
			score += 2
		}
		if len(x.Groups) > 0 {
			if !slices.Contains(x.Groups, group) {
				continue
			}
			score++
		}
		if score > bestScore {
			best, bestScore = x, score
		}
	}
	return best
}

// rule returns the group rule of (metric, dimension): the most specific
// override (metric and dimension named, then metric, then dimension), else
// the defaults; a rule setting only one number leaves the other to less
// specific rules.
func (e *Expected) rule(metric, dim string) (share, tol float64) {
	share, tol = DefaultGroupShare, DefaultTolerance
	if e == nil {
		return
	}
	shareScore, tolScore := -1, -1
	for _, r := range e.Rules {
		if (r.Metric != "" && r.Metric != metric) || (r.Dimension != "" && r.Dimension != dim) {
			continue
		}
		score := 0
		if r.Metric != "" {
			score += 2
		}
		if r.Dimension != "" {
			score++
		}
		if r.GroupShare != nil && score > shareScore {
			share, shareScore = *r.GroupShare, score
		}
		if r.Tolerance != nil && score > tolScore {
			tol, tolScore = *r.Tolerance, score
		}
	}
	return
}

// String is a one-line rendering of the declaration.
func (x *Expectation) String() string {
	var b strings.Builder
	b.WriteString(x.Metric)
	if x.Dimension != "" {
		b.WriteString(" by " + x.Dimension)
	}
	if len(x.Groups) > 0 {
		b.WriteString(" [" + strings.Join(x.Groups, ",") + "]")
	}
	b.WriteString(" " + string(x.Direction))
	switch {
	case x.Bound != nil && x.Metric == MetricLTVKS:
		fmt.Fprintf(&b, " D ≤ %g", *x.Bound)
	case x.Bound != nil:
		b.WriteString(" ≤" + fmtShare(*x.Bound))
	}
	if x.RelativeTo != "" {
		b.WriteString(" of base " + x.RelativeTo)
	}
	return b.String()
}

// Line is the line of the entry in its file (0 when built in code).
func (x *Expectation) Line() int { return x.line }
