package features

import "sync"

// symbols interns a low-cardinality string column (channel, country) to
// small codes shared by every day decoded in this process, so events of
// different days compare by code. Code 0 is null.
type symbols struct {
	mu    sync.RWMutex
	codes map[string]uint32
	names []string
}

func newSymbols() *symbols {
	return &symbols{codes: map[string]uint32{}, names: []string{""}}
}

// code returns the code of s, adding it on first sight.
func (s *symbols) code(b []byte) uint32 {
	s.mu.RLock()
	c, ok := s.codes[string(b)]
	s.mu.RUnlock()
	if ok {
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.codes[string(b)]; ok {
		return c
	}
	c = uint32(len(s.names))
	name := string(b)
	s.names = append(s.names, name)
	s.codes[name] = c
	return c
}

// snapshot returns the names of every code given so far, indexed by code:
// names are only ever appended, so the slice stays valid without the lock.
func (s *symbols) snapshot() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.names[:len(s.names):len(s.names)]
}

var (
	channelSymbols = newSymbols()
	countrySymbols = newSymbols()
)

// directChannel is the spec's name for "no marketing channel"; on input it
// is read as null, on output it stands for null.
const directChannel = "direct"

func channelCode(b []byte) uint32 {
	if string(b) == directChannel {
		return 0
	}
	return channelSymbols.code(b)
}

// channelNames is a snapshot of channel names by code, code 0 as "direct".
func channelNames() []string {
	names := channelSymbols.snapshot()
	out := make([]string, len(names))
	copy(out, names)
	out[0] = directChannel
	return out
}
