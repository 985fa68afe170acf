package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/chain"
	"github.com/seedpay/seedpay/chain/tronsim"
	"github.com/seedpay/seedpay/configs"
	"github.com/seedpay/seedpay/rewards"
)

// startChain connects the TRON node (or starts the simulated one with a
// funded hot wallet). Without payouts the client is read-only (deposit
// scans) and needs no hot key. The returned stop closes what it started.
func startChain(cfg configs.Config, log *zap.Logger) (*chain.Client, func(), error) {
	if cfg.Chain.Simulated {
		node, token, hot, err := tronsim.NewDev("127.0.0.1:0", tronsim.Config{BlockPeriod: time.Second, SolidityLag: 3, Logger: log.Named("tronsim")})
		if err != nil {
			return nil, nil, fmt.Errorf("simulated chain: %w", err)
		}
		for _, f := range cfg.Chain.SimFund { // checked by configs
			addr, units, err := tronsim.ParseFund(f, node.Config().Token.Decimals)
			if err == nil {
				err = node.Fund(addr, units, tronsim.DevTRX, tronsim.DevEnergy)
			}
			if err != nil {
				node.Stop()
				return nil, nil, fmt.Errorf("chain.sim_fund %q: %w", f, err)
			}
			log.Info("simulated chain: wallet funded", zap.String("address", addr), zap.String("tokens", units.String()))
		}
		ccfg := chain.SimConfig(node.Addr(), token)
		ccfg.Expiration, ccfg.FeeLimit = cfg.Chain.Expiration, cfg.Chain.FeeLimit
		client, err := chain.NewWithKey(ccfg, hot)
		if err != nil {
			node.Stop()
			return nil, nil, err
		}
		fmt.Fprintf(os.Stderr, "   TRON is SIMULATED: tronsim at %s, token %s, hot wallet %s (funded; no real token moves)\n\n",
			node.Addr(), token, client.HotAddress())
		log.Warn("simulated TRON chain in process", zap.String("node", node.Addr()), zap.String("token", token), zap.String("hot_wallet", client.HotAddress()))
		return client, func() { _ = client.Close(); node.Stop() }, nil
	}
	if !cfg.Payouts.Enabled {
		client, err := chain.New(cfg.Chain.Config, nil) // read-only: deposit scans
		if err != nil {
			return nil, nil, err
		}
		return client, func() { _ = client.Close() }, nil
	}
	key, err := chain.LoadHotKey(cfg.Chain.HotKey)
	if err != nil {
		return nil, nil, fmt.Errorf("chain.hot_key: %w", err)
	}
	// NewWithHotKey signs through the HotKey and keeps no copy of the key.
	client, err := chain.NewWithHotKey(cfg.Chain.Config, key)
	if err != nil {
		return nil, nil, err
	}
	log.Info("payouts from hot wallet", zap.String("hot_wallet", client.HotAddress()), zap.String("network", cfg.Chain.Network))
	return client, func() { _ = client.Close() }, nil
}

// startPayer builds the payout outbox on client.
func startPayer(ctx context.Context, cfg configs.Config, rdb redis.UniversalClient, client *chain.Client, addresses rewards.AddressBook, reg prometheus.Registerer, log *zap.Logger) (*rewards.Payer, error) {
	if err := checkLedger(ctx, cfg, rdb, log); err != nil {
		return nil, err
	}
	payer, err := rewards.NewPayer(rdb, client, addresses, cfg.Payouts.PayerConfig, reg, log.Named("payer"))
	if err != nil {
		return nil, err
	}
	if err := registerWalletGauges(reg, client); err != nil {
		return nil, err
	}
	return payer, nil
}

// checkLedger refuses to pay from a ledger that may lose writes, unless the
// operator accepted that risk in the config.
func checkLedger(ctx context.Context, cfg configs.Config, rdb redis.UniversalClient, log *zap.Logger) error {
	if cfg.Redis.Embedded {
		return nil // dev: nothing persists anyway, and the banner says so
	}
	err := rewards.CheckDurableLedger(ctx, rdb)
	switch {
	case err == nil:
		return nil
	case cfg.Payouts.AcceptUnsafeLedger && errors.Is(err, rewards.ErrUnsafeLedger):
		log.Warn("payouts run on a ledger that may lose writes (payouts.accept_unsafe_ledger: true)", zap.Error(err))
		return nil
	default:
		return fmt.Errorf("payouts: %w", err)
	}
}

// registerWalletGauges exposes the hot wallet's token, TRX and energy, read
// from the node when /metrics is scraped.
func registerWalletGauges(reg prometheus.Registerer, c *chain.Client) error {
	read := func(f func(context.Context) (float64, error)) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			v, err := f(ctx)
			if err != nil {
				return -1 // unknown: the node did not answer
			}
			return v
		}
	}
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "seedpay", Subsystem: "hot_wallet", Name: "token_balance",
			Help: "Hot wallet TRC-20 balance in whole tokens (-1: node unavailable)."},
			read(func(ctx context.Context) (float64, error) {
				b, err := c.TokenBalance(ctx, c.HotAddress())
				if err != nil {
					return 0, err
				}
				f, _ := new(big.Float).Quo(new(big.Float).SetInt(b), new(big.Float).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(c.Config().Resolved().TokenDecimals)), nil))).Float64()
				return f, nil
			})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "seedpay", Subsystem: "hot_wallet", Name: "trx_sun",
			Help: "Hot wallet TRX balance in sun (-1: node unavailable)."},
			read(func(ctx context.Context) (float64, error) {
				r, err := c.HotResources(ctx)
				return float64(r.TRX), err
			})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "seedpay", Subsystem: "hot_wallet", Name: "energy_available",
			Help: "Hot wallet energy left today (-1: node unavailable)."},
			read(func(ctx context.Context) (float64, error) {
				r, err := c.HotResources(ctx)
				return float64(r.EnergyLimit - r.EnergyUsed), err
			})),
	}
	for _, g := range gauges {
		if err := reg.Register(g); err != nil {
			return err
		}
	}
	return nil
}
