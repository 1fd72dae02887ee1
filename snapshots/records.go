package snapshots

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// Table properties holding icefill's records. Like the branch state they
// are written in the same atomic commit as the change they describe.
const (
	// ValidationPropertyPrefix + ref: the last passing validation of ref.
	ValidationPropertyPrefix = "icefill.validation."
	// ValidationReportPropertyPrefix + ref: what the last validation of
	// ref found, pass or fail (a summary for the report page).
	ValidationReportPropertyPrefix = "icefill.validation-report."
	// HistoryProperty: promotions and rollbacks, oldest first.
	HistoryProperty = "icefill.history"
	// SummaryOperation marks snapshots icefill makes on main itself
	// (promotion rebase, partition restore), so change detection can tell
	// them from the nightly job's commits.
	SummaryOperation = "icefill.operation"
)

// Validation is a passing validation: which candidate snapshot was proven
// against which base snapshot.
type Validation struct {
	Candidate         string `json:"candidate"`
	CandidateSnapshot int64  `json:"candidate_snapshot"`
	Base              string `json:"base"`
	BaseSnapshot      int64  `json:"base_snapshot"`
	From              string `json:"from,omitempty"`
	To                string `json:"to,omitempty"`
	Checks            int    `json:"checks"`
	Expected          string `json:"expected,omitempty"`
	At                int64  `json:"at"`
	By                string `json:"by"`
	// Partitions is the certificate: every partition compared, with the
	// digests of its files on base and candidate. Promote trusts nothing
	// else (see certificate.go).
	Partitions map[string]CertEntry `json:"partitions,omitempty"`
	// Covered is len(Partitions), kept when the certificate itself is left
	// out (in the promotion history).
	Covered int `json:"covered,omitempty"`
}

// summary is the validation without its certificate, for the history.
func (v *Validation) summary() *Validation {
	if v == nil {
		return nil
	}
	c := *v
	c.Covered, c.Partitions = len(v.Partitions), nil
	return &c
}

// Event is one promotion or rollback of main.
type Event struct {
	Kind   string `json:"kind"`   // promote | rollback | write-main
	Method string `json:"method"` // fast-forward | rebase | reset | restore | run
	Branch string `json:"branch,omitempty"`
	// From and To are main's snapshot before and after.
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Tag keeps main's pre-promotion snapshot alive.
	Tag        string      `json:"tag,omitempty"`
	Validation *Validation `json:"validation,omitempty"`
	// Partitions are the days the event changed on main: for a promotion
	// exactly the days whose files differ between From and To (what a
	// rollback restores), whatever the branch's state says.
	Partitions []string `json:"partitions,omitempty"`
	// Changes are those days with the digests of their files before (in
	// snapshot From, which Tag keeps) and after.
	Changes []PartitionChange `json:"changes,omitempty"`
	// RolledBack is set on a promotion once a rollback undid it.
	RolledBack bool   `json:"rolled_back,omitempty"`
	Forced     bool   `json:"forced,omitempty"`
	Skipped    bool   `json:"validation_skipped,omitempty"`
	At         int64  `json:"at"`
	By         string `json:"by"`
	Note       string `json:"note,omitempty"`
}

func encodeJSON(v any) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		return "", err
	}
	return stateEncodingPrefix + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

func decodeJSON(what, v string, into any) error {
	if v == "" {
		return nil
	}
	if !strings.HasPrefix(v, stateEncodingPrefix) {
		return fmt.Errorf("%s has an unknown format (written by a newer icefill?)", what)
	}
	z, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, stateEncodingPrefix))
	if err != nil {
		return fmt.Errorf("%s is damaged: %w", what, err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return fmt.Errorf("%s is damaged: %w", what, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return fmt.Errorf("%s is damaged: %w", what, err)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("%s is damaged: %w", what, err)
	}
	return nil
}

// ReadHistory decodes the promotion/rollback history.
func ReadHistory(props iceberg.Properties) ([]Event, error) {
	var evs []Event
	err := decodeJSON("promotion history", props[HistoryProperty], &evs)
	return evs, err
}

// ReadValidation returns the last passing validation of ref (nil if none).
func ReadValidation(props iceberg.Properties, ref string) (*Validation, error) {
	v := props[ValidationPropertyPrefix+ref]
	if v == "" {
		return nil, nil
	}
	var val Validation
	if strings.HasPrefix(v, stateEncodingPrefix) {
		if err := decodeJSON("validation record of "+ref, v, &val); err != nil {
			return nil, err
		}
		return &val, nil
	}
	// Records written before certificates were plain JSON; they certify no
	// partition, so promote asks for a new validation.
	if err := json.Unmarshal([]byte(v), &val); err != nil {
		return nil, fmt.Errorf("validation record of %s is damaged: %w", ref, err)
	}
	return &val, nil
}

// RecordValidationReport stores what the last validation of ref found
// (any JSON value, compressed). It is informational: not pinned to any
// snapshot, it never unlocks a promotion; the value names its snapshots.
func RecordValidationReport(ctx context.Context, cat catalog.Catalog, ident table.Identifier, ref string, v any) error {
	enc, err := encodeJSON(v)
	if err != nil {
		return err
	}
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return err
	}
	_, _, err = cat.CommitTable(ctx, ident, []table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID())},
		[]table.Update{table.NewSetPropertiesUpdate(iceberg.Properties{ValidationReportPropertyPrefix + ref: enc})})
	if err != nil {
		return fmt.Errorf("record the validation report of %s: %w", ref, err)
	}
	return nil
}

// ReadValidationReport decodes the last validation report of ref into v;
// it reports false when there is none.
func ReadValidationReport(props iceberg.Properties, ref string, v any) (bool, error) {
	raw := props[ValidationReportPropertyPrefix+ref]
	if raw == "" {
		return false, nil
	}
	return true, decodeJSON("validation report of "+ref, raw, v)
}

// LastPromotion is the newest promotion not undone by a rollback.
func LastPromotion(evs []Event) (int, *Event) {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Kind == "promote" && !evs[i].RolledBack {
			return i, &evs[i]
		}
	}
	return -1, nil
}

// Who names the person or job acting: ICEFILL_USER, else user@host.
func Who() string {
	if u := os.Getenv("ICEFILL_USER"); u != "" {
		return u
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}
