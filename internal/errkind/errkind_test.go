package errkind

import (
	"errors"
	"fmt"
	"testing"
)

func TestOf(t *testing.T) {
	base := errors.New("boom")
	cases := []struct {
		name   string
		err    error
		want   Kind
		marked bool
	}{
		{"plain", base, Failed, false},
		{"usage", UsageError(base), Usage, true},
		{"refused wrapped by fmt", fmt.Errorf("promote: %w", RefusedError(base)), Refused, true},
		{"outermost wins", UnavailableError(fmt.Errorf("x: %w", UsageError(base))), Unavailable, true},
		{"usagef", Usagef("bad %s", "flag"), Usage, true},
		{"typed kind", fmt.Errorf("run: %w", typed{}), Refused, true},
		{"mark outside typed wins", UnavailableError(typed{}), Unavailable, true},
		{"refusedf", Refusedf("no"), Refused, true},
	}
	for _, c := range cases {
		got, marked := Of(c.err)
		if got != c.want || marked != c.marked {
			t.Errorf("%s: Of = %v,%v want %v,%v", c.name, got, marked, c.want, c.marked)
		}
	}
	if Mark(Usage, nil) != nil {
		t.Error("Mark(nil) must stay nil")
	}
	if !errors.Is(RefusedError(base), base) {
		t.Error("marks must keep the chain for errors.Is")
	}
}

type typed struct{}

func (typed) Error() string   { return "typed" }
func (typed) ErrorKind() Kind { return Refused }
