package rewards

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func divInt(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic("bad big.Int literal " + s)
	}
	return v
}

// divShares builds shares from "user:points" pairs.
func divShares(pairs ...string) []Share {
	out := make([]Share, len(pairs))
	for i, p := range pairs {
		u, pts, ok := strings.Cut(p, ":")
		if !ok {
			panic("bad share " + p)
		}
		out[i] = Share{User: u, Points: divInt(pts)}
	}
	return out
}

// divCredits renders credits as "user:amount user:amount".
func divCredits(cs []Credit) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.User + ":" + c.Amount.String()
	}
	return strings.Join(parts, " ")
}

func TestDivideTable(t *testing.T) {
	e30 := "1000000000000000000000000000000"
	tests := []struct {
		name   string
		budget string
		shares []Share
		want   string // divCredits
		dust   string
	}{
		{"10 among 3 equal: tie to smallest id", "10", divShares("c:1", "a:1", "b:1"), "a:4 b:3 c:3", "0"},
		{"11 among 3 equal", "11", divShares("c:5", "b:5", "a:5"), "a:4 b:4 c:3", "0"},
		{"1 among 2: larger fraction wins", "1", divShares("a:1", "b:2"), "a:0 b:1", "0"},
		{"1 among 2: larger fraction wins over smaller id", "1", divShares("b:1", "a:2"), "a:1 b:0", "0"},
		{"1 among 2 equal: smaller id", "1", divShares("bob:7", "alice:7"), "alice:1 bob:0", "0"},
		// 100*1/6 = 16 r 4, 100*2/6 = 33 r 2, 100*3/6 = 50 r 0: one unit left, to r 4.
		{"100 by 1:2:3", "100", divShares("x:1", "y:2", "z:3"), "x:17 y:33 z:50", "0"},
		// 7*3/10 = 2 r 1, 7*3/10 = 2 r 1, 7*4/10 = 2 r 8: one unit left, to r 8.
		{"7 by 3:3:4", "7", divShares("a:3", "b:3", "c:4"), "a:2 b:2 c:3", "0"},
		// 8*3/10 = 2 r 4 (twice), 8*4/10 = 3 r 2: one unit left, tied r 4s, to a.
		{"8 by 3:3:4", "8", divShares("b:3", "a:3", "c:4"), "a:3 b:2 c:3", "0"},
		{"exact division", "600", divShares("a:1", "b:2", "c:3"), "a:100 b:200 c:300", "0"},
		{"single user takes all", "12345", divShares("solo:1"), "solo:12345", "0"},
		{"zero budget keeps positive users with 0", "0", divShares("a:1", "b:0", "c:2"), "a:0 c:0", "0"},
		{"zero-point users omitted", "9", divShares("a:0", "b:1", "c:0", "d:2"), "b:3 d:6", "0"},
		{"all zero points: all dust", "7", divShares("a:0", "b:0"), "", "7"},
		{"no shares: all dust", "5", nil, "", "5"},
		{"no shares, no budget", "0", nil, "", "0"},
		{"output sorted by user id", "3", divShares("z:1", "m:1", "a:1"), "a:1 m:1 z:1", "0"},
		// Ties are broken bytewise: "B" (0x42) < "a" (0x61) < "aa".
		{"bytewise tie order", "2", divShares("aa:1", "a:1", "B:1"), "B:1 a:1 aa:0", "0"},
		{"10^30 among 3 equal", e30, divShares("u1:1", "u2:1", "u3:1"),
			"u1:333333333333333333333333333334 u2:333333333333333333333333333333 u3:333333333333333333333333333333", "0"},
		// 10^30 * 10^15 / (10^15+1) leaves remainders 10^15 and 1 summing to 10^15+1.
		{"10^30 by 10^15:1", e30, divShares("big:1000000000000000", "tiny:1"),
			"big:999999999999999000000000000001 tiny:999999999999999", "0"},
		{"18-decimal budget, many points", "5000000000000000000", divShares("a:333333", "b:333333", "c:333334"),
			"a:1666665000000000000 b:1666665000000000000 c:1666670000000000000", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			credits, dust, err := Divide(divInt(tt.budget), tt.shares)
			if err != nil {
				t.Fatal(err)
			}
			if got := divCredits(credits); got != tt.want {
				t.Errorf("credits = %q, want %q", got, tt.want)
			}
			if dust.String() != tt.dust {
				t.Errorf("dust = %s, want %s", dust, tt.dust)
			}
			if err := checkDivide(divInt(tt.budget), tt.shares, credits, dust); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDivideErrors(t *testing.T) {
	tests := []struct {
		name   string
		budget *big.Int
		shares []Share
		want   string
	}{
		{"nil budget", nil, divShares("a:1"), "nil budget"},
		{"negative budget", big.NewInt(-1), divShares("a:1"), "negative budget"},
		{"negative points", big.NewInt(10), divShares("a:1", "b:-1"), `user "b": negative points`},
		{"nil points", big.NewInt(10), []Share{{User: "a"}}, `user "a": nil points`},
		{"duplicate user", big.NewInt(10), divShares("a:1", "b:1", "a:2"), `duplicate user id "a"`},
		{"duplicate zero-point user", big.NewInt(10), divShares("a:0", "a:0"), `duplicate user id "a"`},
		{"empty user", big.NewInt(10), divShares(":1"), "empty user id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			credits, dust, err := Divide(tt.budget, tt.shares)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if credits != nil || dust != nil {
				t.Errorf("got credits %v, dust %v with an error", credits, dust)
			}
		})
	}
}

// TestDivideNoAliasing: Divide changes neither its inputs nor shares memory
// with them, and every returned big.Int is its own.
func TestDivideNoAliasing(t *testing.T) {
	budget := big.NewInt(100)
	in := divShares("c:3", "a:1", "b:0", "d:2")
	before := fmt.Sprint(in)
	credits, dust, err := Divide(budget, in)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(in) != before || budget.Int64() != 100 {
		t.Fatalf("inputs changed: %v, budget %s", in, budget)
	}
	for _, c := range credits {
		c.Amount.SetInt64(-7)
	}
	dust.SetInt64(-7)
	if fmt.Sprint(in) != before || budget.Int64() != 100 {
		t.Fatalf("outputs alias inputs: %v, budget %s", in, budget)
	}

	// All-zero: dust is a copy of the budget, not the budget itself.
	_, dust, err = Divide(budget, divShares("a:0"))
	if err != nil {
		t.Fatal(err)
	}
	dust.SetInt64(1)
	if budget.Int64() != 100 {
		t.Fatalf("dust aliases budget")
	}
}

// checkDivide checks every property of a Divide result.
func checkDivide(budget *big.Int, in []Share, credits []Credit, dust *big.Int) error {
	total := new(big.Int)
	points := map[string]*big.Int{}
	for _, s := range in {
		total.Add(total, s.Points)
		points[s.User] = s.Points
	}

	// Exactly the users with positive points, sorted, each once.
	var wantUsers []string
	for _, s := range in {
		if s.Points.Sign() > 0 {
			wantUsers = append(wantUsers, s.User)
		}
	}
	slices.Sort(wantUsers)
	gotUsers := make([]string, len(credits))
	for i, c := range credits {
		gotUsers[i] = c.User
	}
	if !slices.Equal(gotUsers, wantUsers) {
		return fmt.Errorf("credited users %v, want %v", gotUsers, wantUsers)
	}

	// Conservation: sum(credits) + dust == budget.
	sum := new(big.Int).Set(dust)
	for _, c := range credits {
		if c.Amount.Sign() < 0 {
			return fmt.Errorf("%s: negative amount %s", c.User, c.Amount)
		}
		sum.Add(sum, c.Amount)
	}
	if sum.Cmp(budget) != 0 {
		return fmt.Errorf("sum(credits)+dust = %s, want budget %s", sum, budget)
	}
	if total.Sign() == 0 {
		if dust.Cmp(budget) != 0 {
			return fmt.Errorf("all-zero points: dust %s, want budget %s", dust, budget)
		}
		return nil
	}
	if dust.Sign() != 0 {
		return fmt.Errorf("dust = %s with positive points", dust)
	}

	// Each within one base unit of the exact share: |a*T - B*p| < T.
	// And largest remainder: every user given the extra unit ranks (by
	// remainder desc, user asc) before every user who was not.
	type ranked struct {
		user  string
		rem   *big.Int
		extra bool
	}
	var rs []ranked
	for _, c := range credits {
		exact := new(big.Int).Mul(budget, points[c.User])
		diff := new(big.Int).Sub(new(big.Int).Mul(c.Amount, total), exact)
		if new(big.Int).Abs(diff).Cmp(total) >= 0 {
			return fmt.Errorf("%s: amount %s is not within one unit of %s*%s/%s", c.User, c.Amount, budget, points[c.User], total)
		}
		q, r := new(big.Int).QuoRem(exact, total, new(big.Int))
		extra := c.Amount.Cmp(q) != 0
		if extra && new(big.Int).Add(q, big.NewInt(1)).Cmp(c.Amount) != 0 {
			return fmt.Errorf("%s: amount %s, floor %s", c.User, c.Amount, q)
		}
		rs = append(rs, ranked{c.User, r, extra})
	}
	slices.SortFunc(rs, func(a, b ranked) int {
		if c := b.rem.Cmp(a.rem); c != 0 {
			return c
		}
		return cmp.Compare(a.user, b.user)
	})
	for i := 1; i < len(rs); i++ {
		if rs[i].extra && !rs[i-1].extra {
			return fmt.Errorf("%s (remainder %s) got the extra unit but %s (remainder %s) did not", rs[i].user, rs[i].rem, rs[i-1].user, rs[i-1].rem)
		}
	}

	// Monotone: more points never means less.
	byPoints := slices.Clone(credits)
	slices.SortFunc(byPoints, func(a, b Credit) int { return points[a.User].Cmp(points[b.User]) })
	for i := 1; i < len(byPoints); i++ {
		a, b := byPoints[i-1], byPoints[i]
		if points[a.User].Cmp(points[b.User]) < 0 && a.Amount.Cmp(b.Amount) > 0 {
			return fmt.Errorf("%s has fewer points than %s but more tokens (%s > %s)", a.User, b.User, a.Amount, b.Amount)
		}
	}
	return nil
}

// divRandBig is uniform in [0, max].
func divRandBig(r *rand.Rand, max *big.Int) *big.Int {
	// Draw 64 extra bits beyond max's size, then reduce: the bias is < 2^-64.
	n := new(big.Int)
	for range (max.BitLen()+64)/64 + 1 {
		n.Lsh(n, 64).Or(n, new(big.Int).SetUint64(r.Uint64()))
	}
	return n.Mod(n, new(big.Int).Add(max, big.NewInt(1)))
}

// divRandomCase is one random Divide input: budgets up to 10^30, points up to
// 10^15, 0..500 users, with zero points and tied points mixed in.
func divRandomCase(r *rand.Rand) (*big.Int, []Share) {
	var budget *big.Int
	switch r.IntN(4) {
	case 0:
		budget = big.NewInt(r.Int64N(1000)) // small: many ties and zeros
	case 1:
		budget = divRandBig(r, divInt("1000000000000000000000000000000"))
	case 2:
		budget = new(big.Int).Exp(big.NewInt(10), big.NewInt(r.Int64N(31)), nil)
	default:
		budget = divRandBig(r, new(big.Int).Exp(big.NewInt(10), big.NewInt(r.Int64N(31)), nil))
	}
	var n int
	switch r.IntN(4) {
	case 0:
		n = r.IntN(5)
	case 1:
		n = 500
	default:
		n = r.IntN(501)
	}
	maxPts := []int64{1, 3, 1000, 1_000_000, 1_000_000_000_000_000}[r.IntN(5)]
	zeroFrac := r.Float64() * 0.5
	out := make([]Share, n)
	for i := range out {
		var p int64
		if r.Float64() >= zeroFrac {
			p = r.Int64N(maxPts + 1)
		}
		// Ids of varied length so bytewise order differs from numeric order.
		out[i] = Share{User: fmt.Sprintf("u%x-%d", r.Uint32()>>r.IntN(32), i), Points: big.NewInt(p)}
	}
	return budget, out
}

func divBytes(t *testing.T, budget *big.Int, in []Share) []byte {
	t.Helper()
	credits, dust, err := Divide(budget, in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(struct {
		C []Credit
		D *big.Int
	}{credits, dust})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDivideProperties runs every property on random inputs (fixed seeds).
func TestDivideProperties(t *testing.T) {
	cases := 400
	if testing.Short() {
		cases = 50
	}
	for seed := range uint64(cases) {
		r := rand.New(rand.NewPCG(seed, 0x5eed9a7))
		budget, in := divRandomCase(r)
		credits, dust, err := Divide(budget, in)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := checkDivide(budget, in, credits, dust); err != nil {
			t.Fatalf("seed %d (budget %s, %d users): %v", seed, budget, len(in), err)
		}

		// Deterministic: the same input twice gives the same bytes.
		first := divBytes(t, budget, in)
		if again := divBytes(t, budget, in); !bytes.Equal(first, again) {
			t.Fatalf("seed %d: not deterministic:\n%s\n%s", seed, first, again)
		}
		// Permutation-invariant: shuffled input, same bytes.
		shuffled := slices.Clone(in)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := divBytes(t, budget, shuffled); !bytes.Equal(first, got) {
			t.Fatalf("seed %d: depends on input order:\n%s\n%s", seed, first, got)
		}
	}
}

// TestDivideAllZero: any budget with only zero points is all dust.
func TestDivideAllZero(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for range 50 {
		budget := divRandBig(r, divInt("1000000000000000000000000000000"))
		in := make([]Share, r.IntN(500))
		for i := range in {
			in[i] = Share{User: fmt.Sprint("z", i), Points: new(big.Int)}
		}
		credits, dust, err := Divide(budget, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(credits) != 0 || dust.Cmp(budget) != 0 {
			t.Fatalf("%d zero-point users, budget %s: credits %v, dust %s", len(in), budget, credits, dust)
		}
	}
}

func BenchmarkDivide(b *testing.B) {
	for _, n := range []int{500, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			in := make([]Share, n)
			for i := range in {
				in[i] = Share{User: fmt.Sprintf("user%07d", i), Points: big.NewInt(r.Int64N(1e15))}
			}
			budget := divInt("1000000000000000000000000")
			for b.Loop() {
				if _, _, err := Divide(budget, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
