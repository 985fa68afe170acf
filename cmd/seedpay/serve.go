package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/chihaya/chihaya/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/seedpay/seedpay/api"
	"github.com/seedpay/seedpay/chain"
	"github.com/seedpay/seedpay/configs"
	"github.com/seedpay/seedpay/middleware/account"
	"github.com/seedpay/seedpay/middleware/auth"
	receiptsmw "github.com/seedpay/seedpay/middleware/receipts"
	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/middleware/swarm"
	"github.com/seedpay/seedpay/rewards"
	"github.com/seedpay/seedpay/tracker"
	"github.com/seedpay/seedpay/tracker/peerstore"
)

func newServeCmd() *cobra.Command {
	var configPath, httpAddr, udpAddr, apiAddr, pprofAddr string
	var mutexFraction int
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP and UDP tracker and the admin API",
		Long: "Run the tracker. Without --config it runs the embedded dev default:\n" +
			"in-process Redis (nothing persists), HTTP and UDP on :6969, API on :6970.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := configs.Load(configPath)
			if err != nil {
				return err
			}
			flags := cmd.Flags()
			if flags.Changed("http") {
				cfg.Tracker.HTTPAddr = httpAddr
			}
			if flags.Changed("udp") {
				cfg.Tracker.UDPAddr = udpAddr
			}
			if flags.Changed("api") {
				cfg.API.Addr = apiAddr
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if pprofAddr != "" {
				if err := servePprof(ctx, pprofAddr, mutexFraction); err != nil {
					return err
				}
			}
			return serve(ctx, cfg, configPath == "")
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "YAML config file (default: the embedded dev config)")
	cmd.Flags().StringVar(&httpAddr, "http", "", "HTTP tracker address, overrides tracker.http_addr (\"\" disables)")
	cmd.Flags().StringVar(&udpAddr, "udp", "", "UDP tracker address, overrides tracker.udp_addr (\"\" disables)")
	cmd.Flags().StringVar(&apiAddr, "api", "", "admin API address, overrides api.addr")
	cmd.Flags().StringVar(&pprofAddr, "pprof", "", "serve net/http/pprof (profiles, runtime trace) on this loopback address, for measurements (\"\": off)")
	cmd.Flags().IntVar(&mutexFraction, "pprof-mutex", 0, "with --pprof: sample 1 in N mutex contention events (0: off)")
	return cmd
}

func newLogger(cfg configs.LogConfig) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	zc := zap.NewProductionConfig()
	if cfg.Format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
	}
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.DisableStacktrace = level > zapcore.DebugLevel
	return zc.Build()
}

// serve runs everything until ctx ends or a part fails; every failure comes
// back as an error so main decides the exit status.
func serve(ctx context.Context, cfg configs.Config, embeddedDefault bool) error {
	log, err := newLogger(cfg.Log)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	tracker.RouteChihayaLogs(log)

	redisAddr := cfg.Redis.Addr
	if cfg.Redis.Embedded {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("embedded redis: %w", err)
		}
		defer mr.Close()
		redisAddr = mr.Addr()
	}
	// ContextTimeoutEnabled: a hung Redis must not hold a call past its context.
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, Password: cfg.Redis.Password, DB: cfg.Redis.DB, ContextTimeoutEnabled: true})
	defer rdb.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = rdb.Ping(pingCtx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("redis at %s (redis.addr): %w", redisAddr, err)
	}

	// Ours go in reg; the default registry already carries the Go and process
	// collectors and chihaya's peer-store gauges, and /metrics serves both.
	reg := prometheus.NewRegistry()

	store := registry.NewStore(rdb)
	cache, err := registry.NewCache(store, cfg.Registry, log.Named("registry"))
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if err := cache.Open(ctx); err != nil {
		return err
	}

	peers, err := peerstore.New(peerstore.Config{
		ShardCount:   cfg.PeerStore.ShardCount,
		PeerLifetime: cfg.PeerStore.PeerLifetime,
		GCInterval:   cfg.PeerStore.GCInterval,
	})
	if err != nil {
		return fmt.Errorf("peer_store: %w", err)
	}
	if err := reg.Register(peers.Collector()); err != nil {
		return err
	}
	authHook, err := auth.New(cfg.Access, cache, reg)
	if err != nil {
		return fmt.Errorf("access: %w", err)
	}
	postHooks := []middleware.Hook{swarm.NewCompletionCounter(cache)}
	addresses := rewards.NewAddresses(rdb, chain.TIP191{})
	var (
		accountHook *account.Hook
		settler     *rewards.Settler
		ledger      *rewards.Ledger
		pools       *rewards.Pools
		poolIndex   *rewards.PoolIndex
		payBook     rewards.AddressBook = addresses
	)
	if cfg.Rewards.Enabled {
		keys, removeKeys, err := depositKeys(cfg, log)
		if err != nil {
			return err
		}
		defer removeKeys()
		pools = rewards.NewPools(rdb, keys, func(a string) error { _, err := chain.ParseAddress(a); return err },
			cfg.Rewards.Global.BudgetPerEpoch, log.Named("pools"))
		poolIndex = rewards.NewPoolIndex(pools, cfg.Pools.ReloadInterval, log.Named("pools"))
		if err := poolIndex.Reload(ctx); err != nil {
			return err
		}
		payBook = rewards.PoolAddressBook{Pools: pools, Next: addresses}
		if accountHook, err = account.FromConfig(ctx, cfg.Rewards, rdb, cache, poolIndex.Lookup, reg, log.Named("accounting")); err != nil {
			return fmt.Errorf("rewards: %w", err)
		}
		postHooks = append(postHooks, accountHook)
		if settler, err = rewards.NewSettler(rdb, cfg.Rewards, addresses, reg, log.Named("settler")); err != nil {
			return fmt.Errorf("rewards: %w", err)
		}
		ledger = rewards.NewLedger(rdb, cfg.Rewards)
	}
	var (
		payer   *rewards.Payer
		watcher *rewards.DepositWatcher
	)
	watchDeposits := cfg.Rewards.Enabled && cfg.Pools.Deposits.Enabled
	if cfg.Payouts.Enabled || watchDeposits {
		client, stopChain, err := startChain(cfg, log)
		if err != nil {
			return err
		}
		defer stopChain()
		if cfg.Payouts.Enabled {
			if payer, err = startPayer(ctx, cfg, rdb, client, payBook, reg, log); err != nil {
				return err
			}
		}
		if watchDeposits {
			if watcher, err = rewards.NewDepositWatcher(rdb, client, cfg.Pools.Deposits, reg, log.Named("deposits")); err != nil {
				return fmt.Errorf("pools.deposits: %w", err)
			}
		}
	}
	logic := tracker.NewLogic(middleware.ResponseConfig{
		AnnounceInterval:    cfg.Tracker.AnnounceInterval,
		MinAnnounceInterval: cfg.Tracker.MinAnnounceInterval,
	},
		[]middleware.Hook{authHook, swarm.NewResponder(peers, cache)},
		postHooks,
	)
	defer func() {
		<-logic.Stop()
		<-peers.Stop()
	}()

	metrics, err := tracker.NewMetrics(reg)
	if err != nil {
		return err
	}
	srv, err := tracker.New(cfg.Tracker, logic, metrics, log)
	if err != nil {
		return err
	}
	var receiptKeys *rewards.ReceiptKeys
	if cfg.Rewards.Enabled {
		receiptKeys = rewards.NewReceiptKeys(rdb)
		receiptLedger, err := rewards.NewReceiptLedger(rdb, cfg.Rewards)
		if err != nil {
			return fmt.Errorf("rewards: %w", err)
		}
		intake, err := receiptsmw.New(cache, peers, receiptKeys, receiptLedger, rdb, cfg.Rewards.Receipts, runtime.GOMAXPROCS(0), reg, log.Named("receipts"))
		if err != nil {
			return fmt.Errorf("receipts: %w", err)
		}
		intake.SetPools(poolIndex.Lookup)
		srv.HandleHTTP("POST /receipts/{passkey}", intake)
		srv.HandleHTTP("POST /keys/{passkey}", receiptsmw.NewKeyRegistration(cache, receiptKeys, log.Named("receipts")))
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	reg.MustRegister(srv.UDPSocketCollector())

	public, err := publicConfig(cfg.Public, ledger, pools)
	if err != nil {
		return err
	}
	if public == nil && cfg.Public.Enabled {
		log.Warn("the transparency page and public API are off: they show the reward ledger and rewards are disabled",
			zap.String("public.addr", cfg.Public.Addr))
	}
	deps := api.Deps{
		Store:       store,
		Cache:       cache,
		Swarms:      peers,
		Gatherer:    prometheus.Gatherers{reg, prometheus.DefaultGatherer},
		Log:         log,
		Ledger:      ledger,
		Payer:       payer,
		Addresses:   addresses,
		ReceiptKeys: receiptKeys,
		Pools:       pools,
	}
	if cfg.Public.Addr == "" {
		deps.Public = public // the page shares the admin port
	}
	apiSrv, err := api.New(api.Config{AdminToken: cfg.API.AdminToken}, deps)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	apiLn, err := net.Listen("tcp", cfg.API.Addr)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", cfg.API.Addr, err)
	}
	httpAPI := &http.Server{Handler: apiSrv.Handler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: zap.NewStdLog(log.Named("api"))}
	servers := []*http.Server{httpAPI}
	listeners := []net.Listener{apiLn}
	if public != nil && cfg.Public.Addr != "" {
		deps.Public = public
		h, err := api.PublicHandler(deps)
		if err != nil {
			_ = apiLn.Close()
			return fmt.Errorf("public: %w", err)
		}
		ln, err := net.Listen("tcp", cfg.Public.Addr)
		if err != nil {
			_ = apiLn.Close()
			return fmt.Errorf("public: listen on %s: %w", cfg.Public.Addr, err)
		}
		log.Info("transparency page on its own listener", zap.String("addr", ln.Addr().String()))
		// Facing the internet: bounded headers (X-Forwarded-For is split per
		// request) and no connection held open for ever.
		servers = append(servers, &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10,
			ErrorLog: zap.NewStdLog(log.Named("public"))})
		listeners = append(listeners, ln)
	}

	banner(log, cfg, embeddedDefault, srv, apiLn.Addr())

	ctx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	// tracker, registry follower (+ API listeners, accounting flusher,
	// settler, pool index, payer, deposit watcher); errc holds more than
	// all of them, so none blocks on exit.
	parts := 2
	errc := make(chan error, 16)
	if payer != nil {
		parts++
		go func() { errc <- payer.Run(ctx) }()
	}
	if watcher != nil {
		parts++
		go func() { errc <- watcher.Run(ctx) }()
	}
	if poolIndex != nil {
		parts++
		go func() { errc <- poolIndex.Run(ctx) }()
	}
	if accountHook != nil {
		parts += 2
		// The flusher outlives the frontends by its final flush: it stops
		// when ctx ends, after which no announce is accepted anyway.
		go func() { errc <- accountHook.Run(ctx) }()
		go func() { errc <- settler.Run(ctx) }()
	}
	go func() { errc <- srv.Serve(ctx) }()
	for i, hs := range servers {
		parts++
		go func() {
			if err := hs.Serve(listeners[i]); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("api: %s: %w", listeners[i].Addr(), err)
				return
			}
			errc <- nil
		}()
	}
	go func() { errc <- cache.Follow(ctx) }()

	var first error
	received := 0
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case first = <-errc:
		received++
	}
	cancelAll()
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.Tracker.ShutdownTimeout)
	defer cancel()
	for _, hs := range servers {
		_ = hs.Shutdown(shutCtx)
	}
	for ; received < parts; received++ {
		// A part still starting when shutdown began (the settler's Init,
		// say) returns the cancellation: that is the shutdown, not a fault.
		if err := <-errc; err != nil && first == nil && !errors.Is(err, context.Canceled) {
			first = err
		}
	}
	if first != nil {
		log.Error("stopped", zap.Error(first))
		return first
	}
	log.Info("stopped")
	return nil
}

// keystoreKeys makes deposit keys with chain.NewKeystoreFile: only the
// address leaves it; the key stays encrypted in dir.
type keystoreKeys struct {
	dir, passphrase string
	light           bool
}

func (k keystoreKeys) NewDepositAddress() (string, error) {
	addr, _, err := chain.NewKeystoreFile(k.dir, k.passphrase, k.light)
	return addr, err
}

// depositKeys says where pool deposit keys go: pools.keystore_dir with the
// passphrase from SEEDPAY_POOL_KEYSTORE_PASSPHRASE, or, in dev with no
// directory set, a temporary directory and a random passphrase that is
// never kept (the keys are lost at exit, like everything in dev).
func depositKeys(cfg configs.Config, log *zap.Logger) (rewards.DepositKeys, func(), error) {
	pass := os.Getenv(configs.EnvPoolPassphrase)
	dir := cfg.Pools.KeystoreDir
	if dir == "" {
		if !cfg.Redis.Embedded {
			log.Warn("pool creation is off: set pools.keystore_dir and " + configs.EnvPoolPassphrase)
			return nil, func() {}, nil
		}
		var err error
		if dir, err = os.MkdirTemp("", "seedpay-deposit-keys-"); err != nil {
			return nil, nil, fmt.Errorf("pools: deposit keystore: %w", err)
		}
		remove := func() { _ = os.RemoveAll(dir) }
		if pass == "" {
			var b [24]byte
			if _, err := rand.Read(b[:]); err != nil {
				remove()
				return nil, nil, err
			}
			pass = hex.EncodeToString(b[:])
		}
		fmt.Fprintf(os.Stderr, `
  ==========================================================================
   DEV: pool deposit keys go to %s
   (deleted at exit), encrypted with a passphrase that is NOT KEPT: tokens
   sent to a dev deposit address cannot be recovered after this process.
   Production: pools.keystore_dir + %s.
  ==========================================================================
`, dir, configs.EnvPoolPassphrase)
		log.Warn("dev: pool deposit keys in a temporary keystore with a passphrase that is not kept", zap.String("dir", dir))
		return keystoreKeys{dir: dir, passphrase: pass, light: true}, remove, nil
	}
	if len(pass) < chain.MinPassphraseLen {
		return nil, nil, fmt.Errorf("pools.keystore_dir: set %s (at least %d characters) to encrypt the deposit keys", configs.EnvPoolPassphrase, chain.MinPassphraseLen)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("pools.keystore_dir: %w", err)
	}
	log.Info("pool deposit keys", zap.String("keystore_dir", dir))
	return keystoreKeys{dir: dir, passphrase: pass}, func() {}, nil
}

// publicConfig is the transparency page and public API with their rate
// limit, when rewards are on (they show the reward ledger) and the config
// enables them; the pools section comes with the pool store.
func publicConfig(c configs.PublicConfig, ledger *rewards.Ledger, pools *rewards.Pools) (*api.PublicConfig, error) {
	if !c.Enabled || ledger == nil {
		return nil, nil
	}
	proxies, err := c.Prefixes()
	if err != nil {
		return nil, fmt.Errorf("public.trusted_proxies: %w", err)
	}
	p := &api.PublicConfig{Rate: c.Rate, Burst: c.Burst, MaxClients: c.MaxClients, TrustedProxies: proxies}
	if pools != nil { // never a typed nil in the interface
		p.Pools = api.PublicPoolReader(pools)
	}
	return p, nil
}

func banner(log *zap.Logger, cfg configs.Config, embeddedDefault bool, srv *tracker.Server, apiAddr net.Addr) {
	if cfg.Redis.Embedded {
		fmt.Fprint(os.Stderr, `
  ==========================================================================
   seedpay DEV MODE: Redis is in-process (miniredis). NOTHING PERSISTS.
   Users, torrents and rewards vanish when this process exits.
   For real use: seedpay serve --config configs/production.yaml
  ==========================================================================
`)
		if embeddedDefault && os.Getenv(configs.EnvAdminToken) == "" {
			fmt.Fprintf(os.Stderr, "   admin token: %s   (Authorization: Bearer ...)\n\n", cfg.API.AdminToken)
		}
		log.Warn("dev mode: embedded in-process redis, nothing persists")
	}
	fields := []zap.Field{zap.Stringer("api", apiAddr)}
	if a := srv.HTTPAddr(); a != nil {
		fields = append(fields, zap.Stringer("http", a))
	}
	if a := srv.UDPAddr(); a != nil {
		fields = append(fields, zap.Stringer("udp", a))
	}
	log.Info("seedpay serving", fields...)
}
