package main

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fbsobreira/gotron-sdk/pkg/address"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/seedpay/seedpay/chain/tronsim"
)

func newSimChainCmd() *cobra.Command {
	var (
		listen, solidityListen, token, keyOut, logFormat string
		blockPeriod                                      time.Duration
		solidityLag                                      int
		funds                                            []string
		trx                                              int64
		energy                                           int64
	)
	cmd := &cobra.Command{
		Use:   "sim-chain",
		Short: "Run a simulated TRON node (gRPC) with a TRC-20 token, for development",
		Long: "Run chain/tronsim standalone: the TRON Wallet and WalletSolidity gRPC services\n" +
			"(the subset seedpay uses) with one TRC-20 token (BTT, 18 decimals), blocks every\n" +
			"--block-period and a solidity view --solidity-lag blocks behind. Nothing persists.\n\n" +
			"--fund <address>=<whole tokens> (repeatable) mints tokens to an address and gives\n" +
			"it --trx TRX and --energy energy. Without --fund a hot wallet key is generated and\n" +
			"funded; it is written to --key-out (mode 0600) or, without it, printed.\n" +
			"Point seedpay at it with chain.network: sim, chain.full_node and\n" +
			"chain.solidity_node = the listen address, chain.token = the printed contract.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := simChainLogger(logFormat)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			node, err := tronsim.New(tronsim.Config{
				BlockPeriod:  blockPeriod,
				SolidityLag:  solidityLag,
				SolidityAddr: solidityListen,
				Token:        tronsim.TokenConfig{Address: token},
				Logger:       log,
			})
			if err != nil {
				return err
			}
			if solidityLag == 0 {
				node.SetSolidityLag(0)
			}
			decimals := node.Config().Token.Decimals
			out := cmd.OutOrStdout()
			for _, f := range funds {
				addr, units, err := tronsim.ParseFund(f, decimals)
				if err != nil {
					return fmt.Errorf("--fund %q: %w", f, err)
				}
				if err := node.Fund(addr, units, trx*1_000_000, energy); err != nil {
					return fmt.Errorf("--fund %q: %w", f, err)
				}
				log.Info("funded", zap.String("address", addr), zap.String("token_units", units.String()),
					zap.Int64("trx", trx), zap.Int64("energy", energy))
			}
			if len(funds) == 0 {
				key, err := crypto.GenerateKey()
				if err != nil {
					return err
				}
				hot := address.PubkeyToAddress(key.PublicKey).String()
				units := tronsim.TokenUnits(big.NewInt(tronsim.DevTokens), decimals)
				if err := node.Fund(hot, units, trx*1_000_000, energy); err != nil {
					return err
				}
				keyHex := hex.EncodeToString(crypto.FromECDSA(key))
				if keyOut != "" {
					if err := writeKeyFile(keyOut, keyHex); err != nil {
						return err
					}
					fmt.Fprintf(out, "hot wallet %s funded with %d tokens; its private key (hex) is in %s\n", hot, tronsim.DevTokens, keyOut)
				} else {
					fmt.Fprintf(os.Stderr, "\n"+
						"!!! WARNING: DEVELOPMENT KEY FOR A SIMULATED CHAIN. NEVER USE IT ON A REAL NETWORK. !!!\n"+
						"!!! It is printed because --key-out was not given.                                 !!!\n"+
						"hot wallet %s (funded with %d tokens)\nprivate key (hex): %s\n\n", hot, tronsim.DevTokens, keyHex)
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := node.Start(listen); err != nil {
				return err
			}
			defer node.Stop()
			fmt.Fprintf(out, "tronsim: full node %s, solidity %s, token contract %s (%s, %d decimals)\n",
				node.Addr(), node.SolidityAddr(), node.TokenAddress(), node.Config().Token.Symbol, decimals)
			<-ctx.Done()
			log.Info("tronsim stopping")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:50051", "gRPC address for the Wallet (and, by default, WalletSolidity) service")
	f.StringVar(&solidityListen, "solidity-listen", "", "serve WalletSolidity on its own address (default: the --listen port)")
	f.DurationVar(&blockPeriod, "block-period", 3*time.Second, "time between blocks")
	f.IntVar(&solidityLag, "solidity-lag", 19, "blocks the solidity view trails the head")
	f.StringVar(&token, "token", tronsim.DefaultTokenAddress, "token contract address")
	f.StringArrayVar(&funds, "fund", nil, "<address>=<whole tokens> to mint (repeatable)")
	f.Int64Var(&trx, "trx", 1_000_000, "TRX given to each funded address")
	f.Int64Var(&energy, "energy", tronsim.DevEnergy, "staked energy given to each funded address")
	f.StringVar(&keyOut, "key-out", "", "write the generated hot wallet key (hex) to this new file, mode 0600")
	f.StringVar(&logFormat, "log-format", "console", "console or json")
	return cmd
}

func simChainLogger(format string) (*zap.Logger, error) {
	var zc zap.Config
	switch format {
	case "console":
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
	case "json":
		zc = zap.NewProductionConfig()
	default:
		return nil, fmt.Errorf("--log-format %q: want console or json", format)
	}
	return zc.Build()
}

// writeKeyFile creates path (never overwriting) readable by the owner only.
func writeKeyFile(path, keyHex string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--key-out: %w", err)
	}
	if _, err := f.WriteString(keyHex + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("--key-out: %w", err)
	}
	return f.Close()
}
