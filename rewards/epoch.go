package rewards

import "time"

// EpochOf returns the epoch containing Unix second t.
func (e EpochConfig) EpochOf(t int64) int64 {
	l := int64(e.Length / time.Second)
	if t >= 0 {
		return t / l
	}
	return (t - l + 1) / l
}

// Start returns the first Unix second of epoch n; n+1's Start is its end.
func (e EpochConfig) Start(n int64) int64 { return n * int64(e.Length/time.Second) }

// MinOpenEpoch is the oldest epoch accounting may still credit at now: every
// older epoch is past its grace and may be sealed.
func (e EpochConfig) MinOpenEpoch(now time.Time) int64 {
	return e.EpochOf(now.Add(-e.Grace).Unix())
}
