// Command seedpay is the seedpay tracker: `seedpay serve` runs it.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "seedpay:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "seedpay",
		Short:         "A private BitTorrent tracker that pays seeders in TRC-20 tokens",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newRewardsCmd(), newPayoutsCmd(), newSimChainCmd(), newKeysCmd(), newClientCmd())
	return root
}
