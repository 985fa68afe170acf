package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/seedpay/seedpay/rewards"
)

// chromiumPath finds the browser the page test drives. It fails the test
// (never skips): CI installs chromium, and a skipped browser test is a
// missing test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found in PATH: install the Debian package `chromium` (apt-get install chromium); the transparency page test drives it headless")
	return ""
}

// artifactPath is where the test saves a file for people to look at:
// $SEEDPAY_ARTIFACTS if set, else the system temp directory.
func artifactPath(t *testing.T, name string) string {
	dir := os.Getenv("SEEDPAY_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "seedpay-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// evalAsync evaluates a JavaScript expression in the page, awaiting a
// promise, and decodes its JSON result.
func evalAsync[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	return v
}

// TestBrowserTransparencyPage opens the transparency page in headless
// Chromium on an API serving a ledger sealed by the real settler from a
// real redis-server: the epochs table shows the root, the in-page checker
// finds a served proof valid and a tampered amount invalid, and the page's
// Merkle code agrees with rewards.Leaf, rewards.NewTree and PublicID byte
// for byte.
func TestBrowserTransparencyPage(t *testing.T) {
	bin := chromiumPath(t)
	pe := newPublicEnv(t, nil)
	srv := httptest.NewServer(pe.srv.Handler()) // 127.0.0.1: a secure context, so WebCrypto is on
	defer srv.Close()
	rec, err := rewards.LoadRecord(context.Background(), pe.rdb, pe.first)
	if err != nil {
		t.Fatal(err)
	}
	var alice rewards.UserRecord
	for _, u := range rec.Users {
		if u.User == pe.alice.ID {
			alice = u
		}
	}
	pid := PublicID(pe.alice.ID)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil { // starts the browser, outside any timeout
		t.Fatalf("start chromium (%s): %v", bin, err)
	}
	var (
		mu         sync.Mutex
		exceptions []string
	)
	if err := chromedp.Listen(bctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			mu.Lock()
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			exceptions = append(exceptions, fmt.Sprintf("%s at %s:%d", msg, d.URL, d.LineNumber+1))
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	screenshot := func(name, what string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		p := artifactPath(t, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot (%s): %s", what, p)
	}

	// The page loads and lists the sealed epoch with its root.
	do("load page",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))
	if table := text(`#epochs-table tbody`); !strings.Contains(table, rec.Root) || !strings.Contains(table, pe.txAlice) {
		t.Fatalf("epochs table does not show root %s and alice's payout txid %s:\n%s", rec.Root, pe.txAlice, table)
	}
	if pools := text(`#pools-table tbody`); !strings.Contains(pools, "ACME films") {
		t.Errorf("pools table = %q", pools)
	}
	// The list view has no torrents array: the page shows torrent_count.
	if n := text(`#pools-table tbody tr td:last-child`); n != "1" {
		t.Errorf("pools table torrents column = %q, want 1 (torrent_count)", n)
	}

	// The epoch's lines, then the in-page checker on alice's line: valid
	// from the leaf hash, valid with her user id, invalid with a tampered
	// amount.
	row := `#lines-table tr[data-pid="` + pid + `"] button.check`
	do("check alice's proof",
		chromedp.Navigate(srv.URL+"/#epoch/"+strconv.FormatInt(pe.first, 10)),
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.Click(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.CSS(`#proof-result[data-valid]`)))
	result := text(`#proof-result`)
	if !strings.HasPrefix(result, "VALID") || !strings.Contains(result, "published") {
		t.Fatalf("served proof: %q", result)
	}
	fields, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`({amount: document.getElementById("pf-amount").value,
		address: document.getElementById("pf-address").value, root: document.getElementById("pf-root").value})`))
	if err != nil {
		t.Fatal(err)
	}
	if fields["amount"] != alice.Amount || fields["address"] != addrAlice || fields["root"] != rec.Root {
		t.Fatalf("checker filled with %v, want alice's line %+v and root %s", fields, alice, rec.Root)
	}

	check := func(step string) (string, string) {
		t.Helper()
		do(step,
			chromedp.RemoveAttribute(chromedp.CSS(`#proof-result`), "data-valid"),
			chromedp.Click(chromedp.CSS(`#pf-check`)),
			chromedp.WaitVisible(chromedp.CSS(`#proof-result[data-valid]`)))
		v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#proof-result`), "data-valid"))
		if err != nil {
			t.Fatal(err)
		}
		return text(`#proof-result`), v.Value
	}
	do("type alice's user id", chromedp.SetValue(chromedp.CSS(`#pf-user`), pe.alice.ID))
	res, v := check("with user id")
	if v != "true" || !strings.HasPrefix(res, "VALID") || !strings.Contains(res, "Leaf recomputed") {
		t.Fatalf("with alice's user id: %q", res)
	}
	screenshot("transparency-page-valid.png", "valid proof")

	tampered, _ := new(big.Int).SetString(alice.Amount, 10)
	tampered.Add(tampered, big.NewInt(1))
	do("tamper the amount", chromedp.SetValue(chromedp.CSS(`#pf-amount`), tampered.String()))
	res, v = check("tampered amount")
	if v != "false" || !strings.HasPrefix(res, "INVALID") || !strings.Contains(res, "does not match the leaf") {
		t.Fatalf("tampered amount: %q", res)
	}
	screenshot("transparency-page-invalid.png", "tampered amount")

	// Without the user id only the leaf is checked; a tampered root is caught.
	do("tamper the root",
		chromedp.Clear(chromedp.CSS(`#pf-user`)),
		chromedp.SetValue(chromedp.CSS(`#pf-amount`), alice.Amount),
		chromedp.SetValue(chromedp.CSS(`#pf-root`), strings.Repeat("0", 64)))
	if res, v = check("tampered root"); v != "false" || !strings.Contains(res, "path does not lead") {
		t.Fatalf("tampered root: %q", res)
	}

	// Looking up by user id hashes it in the page to the public id.
	do("look alice up by user id",
		chromedp.SetValue(chromedp.CSS(`#lookup-user`), pe.alice.ID),
		chromedp.Click(chromedp.CSS(`#lookup-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#user`)))
	if shown := text(`#user-pid`); shown != pid {
		t.Errorf("lookup by user id shows %q, want %s", shown, pid)
	}
	if payouts := text(`#user-payouts tbody`); !strings.Contains(payouts, pe.txAlice) {
		t.Errorf("user payouts = %q", payouts)
	}
	screenshot("transparency-page-user.png", "seeder page")

	crossCheckJS(t, ctx)
	mu.Lock()
	defer mu.Unlock()
	if len(exceptions) > 0 {
		t.Errorf("uncaught exceptions in the page: %v", exceptions)
	}
}

// crossCheckJS runs the page's Merkle code on the pinned vectors
// (rewards/testdata/merkle) and on random credits, against the Go code.
func crossCheckJS(t *testing.T, ctx context.Context) {
	t.Helper()
	// Pinned vectors.
	raw, err := os.ReadFile("../rewards/testdata/merkle/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	mismatches := evalAsync[[]string](t, ctx, `(async () => {
		const s = window.seedpay, v = `+string(raw)+`, bad = [];
		for (const c of v.cases) {
			const leaves = [];
			for (const [i, cr] of c.credits.entries()) {
				if (s.hex(s.preimage(String(cr.epoch), cr.user, cr.address, cr.amount)) !== cr.preimage) bad.push(c.name + ": preimage " + i);
				const l = await s.leaf(String(cr.epoch), cr.user, cr.address, cr.amount);
				if (s.hex(l) !== c.leaves[i]) bad.push(c.name + ": leaf " + i);
				leaves.push(l);
			}
			if (s.hex(await s.rootOf(leaves)) !== c.root) bad.push(c.name + ": root");
			if (c.proof) {
				const r = await s.verify(c.proof, c.proof.user);
				if (!r.valid) bad.push(c.name + ": proof: " + r.message);
			}
		}
		return bad;
	})()`)
	if len(mismatches) > 0 {
		t.Errorf("page vs pinned Merkle vectors: %v", mismatches)
	}

	// Random credits: odd unicode, empty and long fields, big amounts.
	rng := rand.New(rand.NewPCG(7, 11))
	alphabet := []rune("abcXYZ019-_ éß€😀中\u0000\u200d")
	randStr := func(max int) string {
		n := rng.IntN(max + 1)
		r := make([]rune, n)
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(r)
	}
	type credit struct {
		Epoch   string `json:"epoch"`
		User    string `json:"user"`
		Address string `json:"address"`
		Amount  string `json:"amount"`
	}
	type want struct {
		Leaves []string `json:"leaves"`
		Root   string   `json:"root"`
		PIDs   []string `json:"pids"`
	}
	for round, n := range []int{1, 2, 3, 7, 16, 33} {
		var credits []credit
		var leaves [][32]byte
		var w want
		for range n {
			epoch := rng.Int64N(1 << 40)
			if rng.IntN(4) == 0 {
				epoch = 1<<63 - 1 - rng.Int64N(10)
			}
			amount := big.NewInt(rng.Int64N(1000))
			for range rng.IntN(5) { // up to ~2^320: past 18-decimal token amounts and JS numbers
				amount.Lsh(amount, 64).Add(amount, new(big.Int).SetUint64(rng.Uint64()))
			}
			c := credit{Epoch: strconv.FormatInt(epoch, 10), User: randStr(40), Address: randStr(40), Amount: amount.String()}
			if rng.IntN(3) == 0 {
				c.Address = ""
			}
			credits = append(credits, c)
			l := rewards.Leaf(epoch, c.User, c.Address, amount)
			leaves = append(leaves, l)
			w.Leaves = append(w.Leaves, hex.EncodeToString(l[:]))
			w.PIDs = append(w.PIDs, PublicID(c.User))
		}
		root := rewards.NewTree(leaves).Root()
		w.Root = hex.EncodeToString(root[:])
		in, _ := json.Marshal(credits)
		got := evalAsync[want](t, ctx, `(async () => {
			const s = window.seedpay, cs = `+string(in)+`, leaves = [];
			for (const c of cs) leaves.push(await s.leaf(c.epoch, c.user, c.address, c.amount));
			const pids = [];
			for (const c of cs) pids.push(await s.publicId(c.user));
			return {leaves: leaves.map(s.hex), root: s.hex(await s.rootOf(leaves)), pids};
		})()`)
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("round %d (%d credits): page %+v, Go %+v (credits %s)", round, n, got, w, in)
		}
		// Every Go proof verifies in the page, and a changed amount does not.
		tree := rewards.NewTree(leaves)
		for i, c := range credits {
			a, _ := new(big.Int).SetString(c.Amount, 10)
			ep, _ := strconv.ParseInt(c.Epoch, 10, 64)
			p, ok := tree.ProofFor(ep, c.User, c.Address, a)
			if !ok {
				t.Fatalf("no Go proof for credit %d", i)
			}
			// The epoch goes as a string: a JSON number past 2^53 loses
			// digits in JavaScript (the API's epochs are far below that).
			body, _ := json.Marshal(struct {
				rewards.Proof
				Epoch string `json:"epoch"`
			}{p, c.Epoch})
			res := evalAsync[[]bool](t, ctx, `(async () => {
				const s = window.seedpay, p = `+string(body)+`;
				const tampered = {...p, amount: (BigInt(p.amount) + 1n).toString()};
				return [(await s.verify(p, p.user)).valid, (await s.verify(p, null)).valid, (await s.verify(tampered, p.user)).valid];
			})()`)
			if len(res) != 3 || !res[0] || !res[1] || res[2] {
				t.Errorf("round %d credit %d: page verify = %v, want [true true false]", round, i, res)
			}
		}
	}

	// The plain SHA-256 (used where WebCrypto is not offered) equals Go's.
	for _, n := range []int{0, 1, 55, 56, 63, 64, 65, 119, 120, 1000} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*31 + n)
		}
		in, _ := json.Marshal(b)
		got := evalAsync[string](t, ctx, `window.seedpay.hex(window.seedpay.sha256Plain(Uint8Array.from(atob(`+string(in)+`), c => c.charCodeAt(0))))`)
		if sum := sha256.Sum256(b); got != hex.EncodeToString(sum[:]) {
			t.Errorf("plain SHA-256 of %d bytes: %s, want %x", n, got, sum)
		}
	}
}
