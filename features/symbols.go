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

func (s *symbols) name(c uint32) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.names[c]
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

// channelName is the output value for a channel code.
func channelName(c uint32) string {
	if c == 0 {
		return directChannel
	}
	return channelSymbols.name(c)
}
