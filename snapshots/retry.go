package snapshots

import (
	"context"
	"math/rand/v2"
	"time"
)

// retry calls attempt up to attempts times, sleeping backoff(n, maxWait)
// before every attempt but the first, until attempt reports done. It
// returns the error of the attempt that was done, the context's error if
// it ended, else the last attempt's error (the budget is spent).
func retry(ctx context.Context, attempts int, maxWait time.Duration, attempt func(n int) (done bool, err error)) error {
	var err error
	for n := 1; n <= attempts; n++ {
		if n > 1 {
			if serr := sleepCtx(ctx, backoff(n, maxWait)); serr != nil {
				return serr
			}
		}
		var done bool
		if done, err = attempt(n); done {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return err
}

// backoff is exponential with equal jitter (a random wait between half and
// all of 50 ms × 2^n, capped).
func backoff(attempt int, maxWait time.Duration) time.Duration {
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	d := 50 * time.Millisecond << min(attempt, 10)
	d = min(d, maxWait)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
