package tracker

import (
	"testing"
	"time"
)

func TestLogThrottle(t *testing.T) {
	var th logThrottle
	now := time.Now().UnixNano()
	if ok, held := th.allow(now, 1); !ok || held != 0 {
		t.Fatalf("first event: ok %v held %d, want it logged", ok, held)
	}
	for i := range 5 {
		if ok, _ := th.allow(now+int64(i)*int64(time.Second), 2); ok {
			t.Fatalf("event %d within %s of the first logged", i, errLogEvery)
		}
	}
	if ok, held := th.allow(now+int64(errLogEvery), 1); !ok || held != 10 {
		t.Fatalf("after %s: ok %v held %d, want logged with 10 held back", errLogEvery, ok, held)
	}
	if ok, _ := th.allow(now+int64(errLogEvery)+1, 1); ok {
		t.Fatal("the next event logged at once")
	}
}
