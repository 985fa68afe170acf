package rewards

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/internal/redistest"
)

// The test binary doubles as a settler process: with these variables set it
// settles the ledger at the given Redis and exits. The kill test SIGKILLs it
// at random moments.
const (
	childRedisEnv = "SEEDPAY_TEST_SETTLER_REDIS"
	childAfterEnv = "SEEDPAY_TEST_SETTLER_AFTER"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(childRedisEnv); addr != "" {
		after, _ := strconv.ParseInt(os.Getenv(childAfterEnv), 10, 64)
		os.Exit(runChildSettler(addr, after))
	}
	os.Exit(m.Run())
}

func runChildSettler(addr string, after int64) int {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	s, err := NewSettler(rdb, testConfig(killBudget), nil, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s.now = func() time.Time { return time.Unix(after*60+30, 0) }
	s.lockTTL = 300 * time.Millisecond // a killed leader's lock frees quickly
	for ctx.Err() == nil {
		tok, err := s.Acquire(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if tok == 0 {
			time.Sleep(20 * time.Millisecond) // the killed one's lock is still alive
			continue
		}
		if err := s.SettleDue(ctx, tok); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		return 0
	}
	return 4
}

const (
	killBudget = "1000000000000000000000" // 1000 tokens of 18 decimals per epoch
	killFirst  = 50
	killEpochs = 6
	killUsers  = 150
)

// seedKillLedger writes the same pseudo-random points into rdb every time.
func seedKillLedger(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	ctx := context.Background()
	rdb.Set(ctx, KeyFirstEpoch, killFirst, 0)
	r := rand.New(rand.NewPCG(7, 11))
	users := make([]string, killUsers)
	for i := range users {
		users[i] = userName(i)
	}
	for e := int64(killFirst); e < killFirst+killEpochs; e++ {
		if e == killFirst+2 {
			continue // an epoch nobody earned in: its budget becomes dust
		}
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, u := range users {
				if r.IntN(4) == 0 {
					continue
				}
				p.SAdd(ctx, KeyEpochUsers(e), u)
				p.HIncrBy(ctx, KeyUserEpoch(u, e), "pts:"+GlobalPool, r.Int64N(1e12))
				p.HIncrBy(ctx, KeyUserEpoch(u, e), "seed_s", r.Int64N(60))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return users
}

// TestSettlerSurvivesSIGKILL kills a real settler process at random moments,
// many times, and checks after each kill that every epoch is either unsealed
// or sealed with exactly the reference record, and that no balance holds a
// credit twice or misses one it has recorded. A last run finishes the job,
// which must then equal the reference ledger exactly.
func TestSettlerSurvivesSIGKILL(t *testing.T) {
	ctx := context.Background()
	after := int64(killFirst + killEpochs)

	// The reference: the same ledger settled without interruption.
	ref := redistest.Start(t).Client(t)
	users := seedKillLedger(t, ref)
	rs := newTestSettler(t, ref, killBudget, after)
	if err := rs.SettleDue(ctx, lead(t, rs)); err != nil {
		t.Fatal(err)
	}
	want := map[int64]string{}
	for e := int64(killFirst); e < after; e++ {
		want[e], _ = ref.Get(ctx, KeyEpochRecord(e)).Result()
		if want[e] == "" {
			t.Fatalf("reference did not seal epoch %d", e)
		}
	}

	srv := redistest.Start(t)
	rdb := srv.Client(t)
	seedKillLedger(t, rdb)
	r := rand.New(rand.NewPCG(1, 2))
	runs := 40
	if testing.Short() {
		runs = 10
	}
	killed := 0
	for i := 0; i < runs; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childRedisEnv+"="+srv.Addr, childAfterEnv+"="+strconv.FormatInt(after, 10))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-time.After(time.Duration(r.IntN(400)) * time.Millisecond):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			killed++
		case err := <-done:
			if err != nil {
				t.Fatalf("settler run %d failed: %v", i, err)
			}
		}
		checkKillInvariants(t, rdb, users, want, after)
	}
	// Finish: a run that is not killed completes the ledger.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childRedisEnv+"="+srv.Addr, childAfterEnv+"="+strconv.FormatInt(after, 10))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final settler: %v\n%s", err, out)
	}
	checkKillInvariants(t, rdb, users, want, after)
	for e := int64(killFirst); e < after; e++ {
		if ok, _ := rdb.Exists(ctx, KeyEpochApplied(e)).Result(); ok != 1 {
			t.Fatalf("epoch %d not applied after the final run", e)
		}
	}
	for _, u := range users {
		got, _ := rdb.Get(ctx, KeyBalance(u)).Result()
		exp, _ := ref.Get(ctx, KeyBalance(u)).Result()
		if got != exp {
			t.Fatalf("%s: balance %q, reference %q", u, got, exp)
		}
	}
	t.Logf("%d runs, %d killed mid-way", runs, killed)
	if killed < runs/4 {
		t.Fatalf("only %d of %d runs were killed: the test did not exercise crashes", killed, runs)
	}
}

func checkKillInvariants(t *testing.T, rdb redis.UniversalClient, users []string, want map[int64]string, after int64) {
	t.Helper()
	ctx := context.Background()
	for e := int64(killFirst); e < after; e++ {
		got, err := rdb.Get(ctx, KeyEpochRecord(e)).Result()
		if err == redis.Nil {
			continue
		}
		if got != want[e] {
			t.Fatalf("epoch %d sealed with a different record:\n%s\nwant\n%s", e, got, want[e])
		}
		var rec Record
		if err := json.Unmarshal([]byte(got), &rec); err != nil {
			t.Fatal(err)
		}
		// Every recorded credit is the record's amount.
		for _, u := range rec.Users {
			cr, err := rdb.HGet(ctx, KeyCredits(u.User), strconv.FormatInt(e, 10)).Result()
			if err == redis.Nil {
				continue // not applied yet
			}
			if cr != u.Amount {
				t.Fatalf("epoch %d: %s credited %s, record says %s", e, u.User, cr, u.Amount)
			}
		}
	}
	creditsMatchBalances(t, rdb, users)
}
