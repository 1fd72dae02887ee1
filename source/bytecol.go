package source

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/icefill/icefill/features"
)

// directColumns are the string columns read from their column chunks
// instead of through pqarrow: an Arrow builder per batch appended every id
// one by one into freshly allocated (and zeroed) buffers, the largest part
// of decoding them. Here the values are copied once per batch into buffers
// reused for the whole file, and DayBuilder copies them into the day.
var directColumns = []string{features.ColEventID, features.ColUserID}

// byteColumn reads one flat BYTE_ARRAY column row group by row group, in
// step with the pqarrow record reader of the other columns, as an Arrow
// string (or binary) array per batch whose buffers are reused: an array is
// valid until the next call of next.
type byteColumn struct {
	pf        *file.Reader
	col       int
	rowGroups []int // still to read, in order
	cr        *file.ByteArrayColumnChunkReader
	maxDef    int16
	field     arrow.Field

	vals  []parquet.ByteArray
	defs  []int16
	data  []byte
	offs  []int32
	valid []byte
}

// directColumn returns a reader of column idx for the given row groups
// (nil: all), or nil when it is not one of directColumns or not a flat
// BYTE_ARRAY string or binary column: such a column is left to pqarrow,
// which reports a wrong type as before.
func directColumn(pf *file.Reader, idx int, rowGroups []int) *byteColumn {
	c := pf.MetaData().Schema.Column(idx)
	name := c.Path()
	if !slices.Contains(directColumns, name) {
		return nil
	}
	if c.PhysicalType() != parquet.Types.ByteArray || c.MaxRepetitionLevel() != 0 || len(c.ColumnPath()) != 1 || c.MaxDefinitionLevel() > 1 {
		return nil
	}
	typ := arrow.DataType(arrow.BinaryTypes.Binary)
	switch c.LogicalType().(type) {
	case schema.StringLogicalType:
		typ = arrow.BinaryTypes.String
	case schema.NoLogicalType, nil:
		if c.ConvertedType() == schema.ConvertedTypes.UTF8 {
			typ = arrow.BinaryTypes.String
		}
	default:
		return nil
	}
	if rowGroups == nil {
		rowGroups = make([]int, pf.NumRowGroups())
		for i := range rowGroups {
			rowGroups[i] = i
		}
	}
	return &byteColumn{pf: pf, col: idx, rowGroups: rowGroups, maxDef: c.MaxDefinitionLevel(),
		field: arrow.Field{Name: name, Type: typ, Nullable: c.MaxDefinitionLevel() > 0}}
}

var errColumnShort = errors.New("column chunk holds fewer rows than its row group")

// next reads the next n rows as an array.
func (c *byteColumn) next(n int) (arrow.Array, error) {
	if cap(c.vals) < n {
		c.vals = make([]parquet.ByteArray, n)
		c.defs = make([]int16, n)
	}
	c.valid = grow(c.valid, (n+7)/8)
	clear(c.valid)
	c.data = c.data[:0]
	c.offs = append(c.offs[:0], 0)
	nulls := 0
	for row := 0; row < n; {
		if c.cr == nil || !c.cr.HasNext() {
			if c.cr != nil {
				if err := c.cr.Err(); err != nil {
					return nil, err
				}
			}
			if len(c.rowGroups) == 0 {
				return nil, errColumnShort
			}
			ccr, err := c.pf.RowGroup(c.rowGroups[0]).Column(c.col)
			if err != nil {
				return nil, err
			}
			c.rowGroups = c.rowGroups[1:]
			br, ok := ccr.(*file.ByteArrayColumnChunkReader)
			if !ok {
				return nil, fmt.Errorf("column %q: unexpected chunk reader %T", c.field.Name, ccr)
			}
			c.cr = br
			continue
		}
		// One page at a time: the values point into the page's buffer,
		// which the next page reuses.
		lvls, nv, err := c.cr.ReadBatchInPage(int64(n-row), c.vals[:n-row], c.defs[:n-row], nil)
		if err != nil {
			return nil, err
		}
		if lvls == 0 {
			return nil, errColumnShort
		}
		vals := c.vals[:nv]
		if c.maxDef == 0 {
			for _, v := range vals {
				c.data = append(c.data, v...)
				c.offs = append(c.offs, int32(len(c.data)))
			}
			for j := row; j < row+nv; j++ {
				c.valid[j>>3] |= 1 << (j & 7)
			}
		} else {
			vi := 0
			for j, d := range c.defs[:lvls] {
				if d == c.maxDef {
					c.data = append(c.data, vals[vi]...)
					vi++
					r := row + j
					c.valid[r>>3] |= 1 << (r & 7)
				} else {
					nulls++
				}
				c.offs = append(c.offs, int32(len(c.data)))
			}
		}
		if len(c.data) > math.MaxInt32 {
			return nil, fmt.Errorf("column %q: more than %d bytes in one batch", c.field.Name, math.MaxInt32)
		}
		row += int(lvls)
	}
	var bitmap *memory.Buffer
	if nulls > 0 {
		bitmap = memory.NewBufferBytes(c.valid)
	}
	bufs := []*memory.Buffer{bitmap, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(c.offs)), memory.NewBufferBytes(c.data)}
	data := array.NewData(c.field.Type, n, bufs, nil, nulls, 0)
	defer data.Release()
	return array.MakeFromData(data), nil
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
