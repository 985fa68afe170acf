package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"github.com/anacrolix/torrent/storage"
	"github.com/spf13/cobra"

	"github.com/seedpay/seedpay/receipts"
	"github.com/seedpay/seedpay/receipts/peer"
)

// clientOptions are the flags of `seedpay client`.
type clientOptions struct {
	announce        string // --passkey-url / --tracker
	keyFile         string
	dataDir         string
	seedFile        string
	torrentFile     string
	magnet          string
	torrentOut      string
	listen          string
	receiptEvery    string
	receiptInterval time.Duration
	submitEvery     time.Duration
	statusEvery     time.Duration
	linger          time.Duration
	registerKey     bool
	maxRuntime      time.Duration
}

func newClientCmd() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "client --passkey-url URL --key FILE --data DIR [--seed FILE|--torrent X.torrent|--magnet URI]",
		Short: "Reference BitTorrent client that exchanges signed upload receipts",
		Long: "Runs one torrent in a BitTorrent client (anacrolix/torrent; DHT, PEX, LSD, uTP and UPnP\n" +
			"off) that announces with the account's passkey like any client, and speaks the\n" +
			"seedpay_receipt extension (BEP 10, see receipts/peer): as a downloader it signs cumulative\n" +
			"receipts for what each seedpay-aware peer sent it; as an uploader it submits the\n" +
			"receipts it gets to POST /receipts/<passkey> every --submit-every.\n\n" +
			"It prints one JSON object per line on stdout (\"ev\" names the event, \"t\" is the Unix time):\n" +
			"start, key_registered, status, complete, hello, receipt_sent, receipt_received, submit,\n" +
			"receipt_result, refused, error, final. On SIGTERM or SIGINT it signs and sends a last\n" +
			"receipt to every uploader, waits --linger for peers' last receipts, submits, and exits.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			go func() { <-ctx.Done(); stop() }() // a second signal kills at once
			if o.maxRuntime > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, o.maxRuntime)
				defer cancel()
			}
			return runClient(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.announce, "passkey-url", "", "announce URL with the account's passkey: http://host:port/announce/<passkey> (default: the torrent's)")
	f.StringVar(&o.announce, "tracker", "", "same as --passkey-url")
	f.StringVar(&o.keyFile, "key", "", "ed25519 receipt key: the 32-byte seed as hex; created (mode 0600) if missing (required)")
	f.StringVar(&o.dataDir, "data", "", "directory of the torrent's data (default with --seed: the file's directory)")
	f.StringVar(&o.seedFile, "seed", "", "share this file: make a private torrent of it (256 KiB pieces) and seed it")
	f.StringVar(&o.torrentFile, "torrent", "", "a .torrent file to seed (if the data is complete) or download")
	f.StringVar(&o.magnet, "magnet", "", "a magnet URI to download (metadata from peers)")
	f.StringVar(&o.torrentOut, "torrent-out", "", "with --seed: write the .torrent here")
	f.StringVar(&o.listen, "listen", "127.0.0.1:0", "address for peer connections (TCP)")
	f.StringVar(&o.receiptEvery, "receipt-every", "1MiB", "sign a receipt for an uploader every this many bytes received from it")
	f.DurationVar(&o.receiptInterval, "receipt-interval", 2*time.Second, "and at least this often while the count grows")
	f.DurationVar(&o.submitEvery, "submit-every", 2*time.Second, "submit the receipts peers sent us this often")
	f.DurationVar(&o.statusEvery, "status-every", time.Second, "print a status line this often")
	f.DurationVar(&o.linger, "linger", time.Second, "on shutdown, wait this long for peers' last receipts before the last submission")
	f.BoolVar(&o.registerKey, "register-key", false, "register the key with the tracker (POST /keys/<passkey>) before starting")
	f.DurationVar(&o.maxRuntime, "max-runtime", 0, "exit (cleanly) after this long; 0: run until a signal")
	return cmd
}

// jsonLines prints events as JSON lines; safe for concurrent use.
type jsonLines struct {
	mu sync.Mutex
	w  io.Writer
}

func (j *jsonLines) emit(ev string, fields map[string]any) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["ev"] = ev
	fields["t"] = float64(time.Now().UnixNano()) / 1e9
	b, err := json.Marshal(fields)
	if err != nil {
		b, _ = json.Marshal(map[string]any{"ev": "error", "err": err.Error()})
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_, _ = j.w.Write(append(b, '\n'))
}

// parseSize reads a byte count such as 1048576, 512KiB, 1MiB, 2MB, 1GiB.
func parseSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') {
		i--
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (B, KiB, MiB, GiB, KB, MB, GB)", s)
	}
	mult := map[string]uint64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1e3, "MB": 1e6, "GB": 1e9,
		"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[strings.TrimSpace(s[i:])]
	if mult == 0 || n == 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a positive number with an optional unit (B, KiB, MiB, GiB, KB, MB, GB)", s)
	}
	return n * mult, nil
}

// makeSeedTorrent builds a private single-file torrent of path announcing
// to announce (which may be empty).
func makeSeedTorrent(path, announce string) (*metainfo.MetaInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("--seed %s: not a regular file", path)
	}
	private := true
	info := metainfo.Info{PieceLength: 256 << 10, Private: &private}
	if err := info.BuildFromFilePath(path); err != nil {
		return nil, err
	}
	mi := &metainfo.MetaInfo{CreatedBy: "seedpay client", CreationDate: time.Now().Unix()}
	if announce != "" {
		mi.Announce = announce
		mi.AnnounceList = metainfo.AnnounceList{{announce}}
	}
	if mi.InfoBytes, err = bencode.Marshal(info); err != nil {
		return nil, err
	}
	return mi, nil
}

// torrentSpec resolves the torrent source flags into a spec, the data
// directory and a description for the start line.
func torrentSpec(o clientOptions) (*torrent.TorrentSpec, string, error) {
	n := 0
	for _, s := range []string{o.seedFile, o.torrentFile, o.magnet} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, "", errors.New("give exactly one of --seed FILE, --torrent X.torrent, --magnet URI")
	}
	dataDir := o.dataDir
	switch {
	case o.seedFile != "":
		abs, err := filepath.Abs(o.seedFile)
		if err != nil {
			return nil, "", err
		}
		if dataDir == "" {
			dataDir = filepath.Dir(abs)
		} else if d, err := filepath.Abs(dataDir); err != nil || d != filepath.Dir(abs) {
			return nil, "", fmt.Errorf("--seed %s: the file must be directly in --data %s", o.seedFile, o.dataDir)
		}
		mi, err := makeSeedTorrent(abs, o.announce)
		if err != nil {
			return nil, "", err
		}
		if o.torrentOut != "" {
			f, err := os.Create(o.torrentOut)
			if err != nil {
				return nil, "", err
			}
			werr := mi.Write(f)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return nil, "", werr
			}
		}
		spec, err := torrent.TorrentSpecFromMetaInfoErr(mi)
		return spec, dataDir, err
	case o.torrentFile != "":
		mi, err := metainfo.LoadFromFile(o.torrentFile)
		if err != nil {
			return nil, "", fmt.Errorf("--torrent %s: %w", o.torrentFile, err)
		}
		spec, err := torrent.TorrentSpecFromMetaInfoErr(mi)
		if err != nil {
			return nil, "", fmt.Errorf("--torrent %s: %w", o.torrentFile, err)
		}
		return spec, dataDir, nil
	default:
		spec, err := torrent.TorrentSpecFromMagnetUri(o.magnet)
		if err != nil {
			return nil, "", fmt.Errorf("--magnet: %w", err)
		}
		return spec, dataDir, nil
	}
}

// firstAnnounce returns the first tracker URL of a spec.
func firstAnnounce(spec *torrent.TorrentSpec) string {
	for _, tier := range spec.Trackers {
		for _, u := range tier {
			if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
				return u
			}
		}
	}
	return ""
}

// receiptClient glues the seedpay_receipt extension to an anacrolix client.
type receiptClient struct {
	ext   *peer.Extension
	out   *jsonLines
	mu    sync.Mutex
	conns map[*torrent.Peer]*peer.Conn
}

func (rc *receiptClient) conn(p *torrent.Peer) *peer.Conn {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.conns[p]
}

// install hooks the extension into cfg's callbacks. The callbacks run with
// the client's lock held: they only touch the extension's own state, and
// anything that writes to a peer runs in a goroutine of its own.
func (rc *receiptClient) install(cfg *torrent.ClientConfig) {
	cb := &cfg.Callbacks
	cb.PeerConnAdded = append(cb.PeerConnAdded, func(pc *torrent.PeerConn) {
		// Our own copy of the protocol map (the default is shared by all
		// connections and must not be changed), with the extension added.
		m := &torrent.LocalLtepProtocolMap{Index: slices.Clone(pc.LocalLtepProtocolMap.Index), NumBuiltin: pc.LocalLtepProtocolMap.NumBuiltin}
		m.AddUserProtocol(peer.ExtensionName)
		pc.LocalLtepProtocolMap = m
		var ih [20]byte
		if t := pc.Torrent(); t != nil {
			ih = t.InfoHash()
		}
		c := rc.ext.NewConn(ih, pc.RemoteAddr.String(), func(b []byte) error {
			return pc.WriteExtendedMessage(peer.ExtensionName, b)
		})
		rc.mu.Lock()
		rc.conns[&pc.Peer] = c
		rc.mu.Unlock()
	})
	cb.ReadExtendedHandshake = func(pc *torrent.PeerConn, msg *pp.ExtendedHandshakeMessage) {
		if _, ok := msg.M[peer.ExtensionName]; !ok {
			return
		}
		go func() {
			if err := pc.WriteExtendedMessage(peer.ExtensionName, rc.ext.Hello()); err != nil {
				rc.out.emit("refused", map[string]any{"remote": pc.RemoteAddr.String(), "err": "sending hello: " + err.Error()})
			}
		}()
	}
	cb.PeerConnReadExtensionMessage = append(cb.PeerConnReadExtensionMessage, func(ev torrent.PeerConnReadExtensionMessageEvent) {
		if ev.ExtensionNumber == pp.HandshakeExtendedID {
			return
		}
		name, builtin, err := ev.PeerConn.LocalLtepProtocolMap.LookupId(ev.ExtensionNumber)
		if err != nil || builtin || name != peer.ExtensionName {
			return
		}
		if c := rc.conn(&ev.PeerConn.Peer); c != nil {
			_ = c.Handle(ev.Payload) // refusals are reported through OnEvent
		}
	})
	cb.ReceivedUsefulData = append(cb.ReceivedUsefulData, func(ev torrent.ReceivedUsefulDataEvent) {
		if c := rc.conn(ev.Peer); c != nil {
			c.AddReceived(uint64(len(ev.Message.Piece)))
		}
	})
	cb.PeerConnClosed = func(pc *torrent.PeerConn) {
		rc.mu.Lock()
		c := rc.conns[&pc.Peer]
		delete(rc.conns, &pc.Peer)
		rc.mu.Unlock()
		if c != nil {
			c.Close()
		}
	}
}

func (rc *receiptClient) onEvent(ev peer.Event) {
	f := map[string]any{"remote": ev.Remote, "info_hash": hex.EncodeToString(ev.InfoHash[:])}
	switch ev.Kind {
	case peer.EventHello:
		f["key"] = hex.EncodeToString(ev.Key[:])
	case peer.EventReceiptSent:
		f["to"] = hex.EncodeToString(ev.Key[:])
		f["session"] = hex.EncodeToString(ev.Session[:])
		f["cumulative"] = ev.Cumulative
	case peer.EventReceiptReceived:
		f["from"] = hex.EncodeToString(ev.Key[:])
		f["session"] = hex.EncodeToString(ev.Session[:])
		f["cumulative"] = ev.Cumulative
	case peer.EventRefused:
		if ev.Err != nil {
			f["err"] = ev.Err.Error()
		}
	}
	rc.out.emit(ev.Kind, f)
}

// upstreams lists what we received from each seedpay-aware uploader.
func (rc *receiptClient) upstreams() []map[string]any {
	var list []map[string]any
	for _, u := range rc.ext.Upstreams() {
		list = append(list, map[string]any{"key": hex.EncodeToString(u.Uploader[:]), "session": hex.EncodeToString(u.Session[:]),
			"received": u.Received, "signed": u.Signed, "delivered": u.Delivered, "live": u.Live})
	}
	slices.SortFunc(list, func(a, b map[string]any) int { return strings.Compare(a["key"].(string), b["key"].(string)) })
	return list
}

func runClient(ctx context.Context, o clientOptions, stdout, stderr io.Writer) error {
	out := &jsonLines{w: stdout}
	if o.keyFile == "" {
		return errors.New("--key FILE is required")
	}
	every, err := parseSize(o.receiptEvery)
	if err != nil {
		return fmt.Errorf("--receipt-every: %w", err)
	}
	for name, d := range map[string]time.Duration{"--receipt-interval": o.receiptInterval, "--submit-every": o.submitEvery, "--status-every": o.statusEvery} {
		if d <= 0 {
			return fmt.Errorf("%s: must be positive", name)
		}
	}
	spec, dataDir, err := torrentSpec(o)
	if err != nil {
		return err
	}
	if dataDir == "" {
		return errors.New("--data DIR is required")
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	announce := o.announce
	if announce != "" {
		spec.Trackers = [][]string{{announce}}
	} else if announce = firstAnnounce(spec); announce == "" {
		return errors.New("no HTTP announce URL: give --passkey-url http://host:port/announce/<passkey>")
	}
	ep, err := peer.EndpointsFromAnnounce(announce)
	if err != nil {
		return err
	}
	key, created, err := peer.LoadOrCreateKey(o.keyFile)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	if o.registerKey {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := peer.RegisterKey(rctx, hc, ep, key)
		cancel()
		if err != nil {
			return err
		}
		out.emit("key_registered", map[string]any{"url": ep.Keys})
	}

	rc := &receiptClient{out: out, conns: map[*torrent.Peer]*peer.Conn{}}
	rc.ext, err = peer.New(key, peer.Config{ReceiptEvery: every, ReceiptInterval: o.receiptInterval, OnEvent: rc.onEvent})
	if err != nil {
		return err
	}
	pub := rc.ext.PublicKey()

	cfg := torrent.NewDefaultClientConfig()
	host, port, err := net.SplitHostPort(o.listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", o.listen, err)
	}
	if cfg.ListenPort, err = strconv.Atoi(port); err != nil {
		return fmt.Errorf("--listen %q: bad port", o.listen)
	}
	cfg.ListenHost = func(string) string { return host }
	if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
		cfg.DisableIPv6 = true
	}
	cfg.NoDHT = true
	cfg.DisablePEX = true
	cfg.LocalServiceDiscovery = nil
	cfg.DisableUTP = true // TCP only: the go-utp module is not available to this build (third_party/go-utp)
	cfg.NoDefaultPortForwarding = true
	cfg.DisableWebtorrent = true
	cfg.DisableWebseeds = true
	cfg.Seed = true
	// Keep connections to peers that completed too: they carry the last
	// receipts (anacrolix drops mutually complete peers by default).
	cfg.DropMutuallyCompletePeers = false
	cfg.DataDir = dataDir
	pieces := storage.NewFileOpts(storage.NewFileClientOpts{ClientBaseDir: dataDir})
	defer pieces.Close()
	cfg.DefaultStorage = pieces
	cfg.Slogger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.FailedAnnounceMinInterval = 5 * time.Second
	cfg.FailedAnnounceMaxInterval = time.Minute
	rc.install(cfg)

	cl, err := torrent.NewClient(cfg)
	if err != nil {
		return fmt.Errorf("torrent client: %w", err)
	}
	closed := false
	closeClient := func() {
		if !closed {
			closed = true
			cl.Close()
		}
	}
	defer closeClient()
	t, _, err := cl.AddTorrentSpec(spec)
	if err != nil {
		return fmt.Errorf("adding the torrent: %w", err)
	}
	var listen []string
	for _, a := range cl.ListenAddrs() {
		listen = append(listen, a.String())
	}
	ih := t.InfoHash()
	out.emit("start", map[string]any{"public_key": hex.EncodeToString(pub[:]), "key_created": created, "listen": listen,
		"info_hash": ih.HexString(), "announce": announce, "receipts_url": ep.Receipts, "data": dataDir})

	sub := &peer.Submitter{URL: ep.Receipts, HTTP: hc, Collector: rc.ext.Collector(),
		OnResult: func(r receipts.Receipt, res peer.Result) {
			out.emit("receipt_result", map[string]any{"downloader": hex.EncodeToString(r.Downloader[:]), "session": hex.EncodeToString(r.Session[:]),
				"info_hash": hex.EncodeToString(r.InfoHash[:]), "cumulative": r.Cumulative, "status": res.Status, "reason": res.Reason,
				"credited_bytes": res.Credited})
		}}
	var credited uint64
	submit := func(ctx context.Context) {
		if len(rc.ext.Collector().Pending(0)) == 0 {
			return
		}
		s, err := sub.Submit(ctx)
		credited += s.CreditedBytes
		f := map[string]any{"submitted": s.Submitted, "accepted": s.Accepted, "rejected": s.Rejected, "credited_bytes": s.CreditedBytes,
			"credited_total": credited}
		if err != nil {
			f["err"] = err.Error()
		}
		out.emit("submit", f)
	}
	status := func(ev string) {
		f := map[string]any{"info_hash": ih.HexString()}
		if t.Info() != nil {
			f["length"] = t.Length()
			f["bytes_completed"] = t.BytesCompleted()
			f["complete"] = t.Complete().Bool()
		}
		st := t.Stats()
		f["uploaded"] = st.BytesWrittenData.Int64()
		f["downloaded"] = st.BytesReadUsefulData.Int64()
		f["peers"] = st.ActivePeers
		var conns []map[string]any
		for _, pc := range t.PeerConns() {
			ps := pc.Stats()
			c := map[string]any{"remote": pc.RemoteAddr.String(), "read_useful": ps.BytesReadUsefulData.Int64(),
				"written_data": ps.BytesWrittenData.Int64(), "client": fmt.Sprint(pc.PeerClientName.Load())}
			if rcc := rc.conn(&pc.Peer); rcc != nil {
				if k, ok := rcc.PeerKey(); ok {
					c["key"] = hex.EncodeToString(k[:])
				}
			}
			conns = append(conns, c)
		}
		f["conns"] = conns
		f["received_from"] = rc.upstreams()
		f["credited_total"] = credited
		out.emit(ev, f)
	}

	gotInfo := t.GotInfo()
	var complete <-chan struct{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	submitTick := time.NewTicker(o.submitEvery)
	defer submitTick.Stop()
	statusTick := time.NewTicker(o.statusEvery)
	defer statusTick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-gotInfo:
			gotInfo = nil
			t.DownloadAll()
			complete = t.Complete().On()
			out.emit("info", map[string]any{"name": t.Name(), "length": t.Length(), "pieces": t.NumPieces()})
		case <-complete:
			complete = nil
			rc.ext.Flush() // the tail of the download
			status("complete")
		case <-tick.C:
			rc.ext.Tick()
		case <-submitTick.C:
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			submit(sctx)
			cancel()
		case <-statusTick.C:
			status("status")
		}
	}

	// Shutdown: the last receipts out, the peers' last receipts in, then
	// the last submission, then the stopped announce (Close).
	rc.ext.Flush()
	time.Sleep(o.linger)
	rc.ext.Tick()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	submit(sctx)
	cancel()
	status("final")
	closeClient()
	return nil
}
