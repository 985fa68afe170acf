package main

import (
	"context"
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
	var configPath, httpAddr, udpAddr, apiAddr string
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
			return serve(ctx, cfg, configPath == "")
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "YAML config file (default: the embedded dev config)")
	cmd.Flags().StringVar(&httpAddr, "http", "", "HTTP tracker address, overrides tracker.http_addr (\"\" disables)")
	cmd.Flags().StringVar(&udpAddr, "udp", "", "UDP tracker address, overrides tracker.udp_addr (\"\" disables)")
	cmd.Flags().StringVar(&apiAddr, "api", "", "admin API address, overrides api.addr")
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
	)
	if cfg.Rewards.Enabled {
		acct, err := rewards.NewAccountant(rdb, cfg.Rewards)
		if err != nil {
			return fmt.Errorf("rewards: %w", err)
		}
		accountHook, err = account.New(account.Config{
			ShardCapacity: cfg.Rewards.BufferSize,
			FlushInterval: cfg.Rewards.FlushInterval,
		}, cache, account.LedgerSink{Accountant: acct, Epoch: cfg.Rewards.Epoch}, reg, log.Named("accounting"))
		if err != nil {
			return fmt.Errorf("rewards: %w", err)
		}
		postHooks = append(postHooks, accountHook)
		if settler, err = rewards.NewSettler(rdb, cfg.Rewards, addresses, reg, log.Named("settler")); err != nil {
			return fmt.Errorf("rewards: %w", err)
		}
		ledger = rewards.NewLedger(rdb, cfg.Rewards)
	}
	var payer *rewards.Payer
	if cfg.Payouts.Enabled {
		stopChain, p, err := startPayer(ctx, cfg, rdb, addresses, reg, log)
		if err != nil {
			return err
		}
		defer stopChain()
		payer = p
	}
	logic := middleware.NewLogic(middleware.ResponseConfig{
		AnnounceInterval:    cfg.Tracker.AnnounceInterval,
		MinAnnounceInterval: cfg.Tracker.MinAnnounceInterval,
	}, peers,
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
		srv.HandleHTTP("POST /receipts/{passkey}", intake)
		srv.HandleHTTP("POST /keys/{passkey}", receiptsmw.NewKeyRegistration(cache, receiptKeys, log.Named("receipts")))
	}
	if err := srv.Listen(); err != nil {
		return err
	}

	apiSrv, err := api.New(api.Config{AdminToken: cfg.API.AdminToken}, api.Deps{
		Store:       store,
		Cache:       cache,
		Swarms:      peers,
		Gatherer:    prometheus.Gatherers{reg, prometheus.DefaultGatherer},
		Log:         log,
		Ledger:      ledger,
		Payer:       payer,
		Addresses:   addresses,
		ReceiptKeys: receiptKeys,
	})
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	apiLn, err := net.Listen("tcp", cfg.API.Addr)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", cfg.API.Addr, err)
	}
	httpAPI := &http.Server{Handler: apiSrv.Handler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: zap.NewStdLog(log.Named("api"))}

	banner(log, cfg, embeddedDefault, srv, apiLn.Addr())

	ctx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	parts := 3 // tracker, api, registry follower (+ accounting flusher, settler, payer)
	errc := make(chan error, 6)
	if payer != nil {
		parts++
		go func() { errc <- payer.Run(ctx) }()
	}
	if accountHook != nil {
		parts += 2
		// The flusher outlives the frontends by its final flush: it stops
		// when ctx ends, after which no announce is accepted anyway.
		go func() { errc <- accountHook.Run(ctx) }()
		go func() { errc <- settler.Run(ctx) }()
	}
	go func() { errc <- srv.Serve(ctx) }()
	go func() {
		if err := httpAPI.Serve(apiLn); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("api: %w", err)
			return
		}
		errc <- nil
	}()
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
	_ = httpAPI.Shutdown(shutCtx)
	for ; received < parts; received++ {
		if err := <-errc; err != nil && first == nil {
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
